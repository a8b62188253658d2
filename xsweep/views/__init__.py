"""What people look at: notebook widgets, the live grid map, pictures, ``ds.xsweep``.

* ``widgets``: controls for parameters, and explorers of a space or a Dataset;
* ``gridview``: the live map of a function's whole grid;
* ``plotting``: figures as image outputs, montages;
* ``accessor``: the ``ds.xsweep`` accessor on Datasets (statuses, failures, explore).

Views take a space or a parameter as they find it (never import the classes at run time),
so the layers below build them on request (``p.widget()``, ``ps.explore()``,
``ps.grid_view()``) without depending on them.
"""
