"""Parameters: the axes of a sweep (``xs.Parameter``) and the checks their values pass.

* ``parameter``: :class:`Parameter`: values, the current value, callbacks, metadata;
* ``values``: turning what a user gives into a grid's values (sorted, unique, one kind).

This layer imports only the base (``errors``, ``text``); ``Parameter.widget()`` builds its
view from :mod:`xsweep.views` when asked.
"""

from .parameter import Parameter

__all__ = ["Parameter"]
