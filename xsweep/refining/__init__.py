"""Adaptive refinement of a sweep: where to add values of continuous parameters, and when to stop.

``ps.refine(fn)`` (:mod:`xsweep.space.refining`) sweeps a grid, then in rounds adds values of
the continuous parameters (declared with ``bounds=``) where the results change the most, and
sweeps only the new cells, until a goal is met. The grid stays rectilinear: a value added to
one parameter is a whole slab of new cells, one per combination of the other parameters.
This package holds the parts that know nothing of spaces or stores, one module each:

- :mod:`.losses`: how bad each interval between neighbouring values is (built-in losses
  ``"change"`` and ``"curvature"``, and a user's callable);
- :mod:`.choice`: which intervals to split in a round, weighing each interval's loss by its
  width and the cost of its slab, within the budget;
- :mod:`.observed`: the number per cell that drives it (a scalar output, or a reduction of
  an array output), read from each round's Dataset;
- :mod:`.goal`: the options, checked once, and each round's report;
- :mod:`.rounds`: the loop of rounds, given how to sweep and how to grow the grid.
"""
