"""Swept functions: how one maps onto the parameters, and which version of its code it is.

* ``binding``: the function's dims, call convention, name and options in a space;
* ``fingerprint``: a hash of the code (and the globals and helpers it reads) that tells
  cached cells of another version apart.
"""
