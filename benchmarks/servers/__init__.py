"""The four servers under test. Each serves the same endpoints with the same payloads:

* ``fast?n=N``  - N small JSON events, yielded as fast as possible;
* ``burst?n=N`` - N ~300-byte JSON events, all ready at once (no await between them);
* ``tick?n=N``  - one small JSON event a second, for N seconds (idle streams);
* ``topic``     - a subscriber of the process's one broadcast topic (scenario F, ``topic.py``);
* ``publish?rate=R&n=N`` - publishes N ``tick`` events to that topic at R a second, then answers JSON.
"""
