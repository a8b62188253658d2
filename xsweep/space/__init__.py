"""ParameterSpace, built from parts, one module per part.

* ``parameter_space``: the class: the grid, ``sweep`` and ``sweep_async``;
* ``caching``, ``single_cells``, ``inspecting``, ``refining``: its other verbs (the cache
  switch; ``run_process`` and ``cell``; status, failures, live looks and views; ``refine``
  and ``refine_async``);
* ``results``: :class:`~xsweep.space.results.Results`, which store each verb talks to and
  when a sweep writes;
* ``plan``: what a sweep will do, checked once before anything runs.
"""

from .parameter_space import ParameterSpace

__all__ = ["ParameterSpace"]
