"""The four servers under test. Each serves the same three endpoints with the same payloads:

* ``fast?n=N``  - N small JSON events, yielded as fast as possible;
* ``burst?n=N`` - N ~300-byte JSON events, all ready at once (no await between them);
* ``tick?n=N``  - one small JSON event a second, for N seconds (idle streams).
"""
