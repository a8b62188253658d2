import matplotlib
import pytest

matplotlib.use("Agg")

import xsweep as xs  # noqa: E402


@pytest.fixture
def space():
    """A 3 x 2 space of an int and a float parameter."""
    return xs.ParameterSpace(
        [
            xs.Parameter("a", values=[1, 2, 3], units="m", description="a length"),
            xs.Parameter("b", values=[0.5, 1.5]),
        ]
    )
