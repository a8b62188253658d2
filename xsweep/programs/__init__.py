"""Programs and their files: sweeping programs per cell, reading what they write, trees of runs.

* ``command``: ``xs.command``: a program run per cell in its own folder, as a function;
* ``readers``: reading the files programs write, by extension;
* ``tree``: ``xs.open_tree``: folders of earlier runs as one Dataset (a sweep of a reader).
"""
