"""Running a cell through the cache, without IPython.

``engine`` drives one run (analysis -> key -> hit or miss -> listeners) over the notebook's
``host`` (the protocol, the options, the outcome). A hit is ``restore``'s job; after a miss ran,
``record`` describes what the cell did as an entry, whose layout beyond the variables is in
``contents``. ``capture`` taps and replays outputs, ``serialize`` pickles values,
``explanation`` says why a run hit or missed, and ``pays`` whether an entry is worth keeping.
"""

__all__: list[str] = []  # a namespace of modules: import them by name
