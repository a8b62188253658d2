"""The version of xsweep, in one place: the build reads it (pyproject.toml), so do
``xsweep.__version__``, ``xsweep --version`` and the provenance attributes of results files.

Versions are ``MAJOR.MINOR.PATCH`` (PEP 440 release numbers). Before 1.0, a minor release may
change the API (CHANGELOG.md says what, and how to adapt) and a patch release only fixes bugs;
results files written by any release stay readable by later ones (the file layout has its own
version, ``xsweep_format``). A release sets the number here and gives CHANGELOG.md an entry
headed ``## MAJOR.MINOR.PATCH``; CI (``.ci/check_dists.py``) checks that both agree and that
the wheel carries it.
"""

__version__ = "0.2.0"
