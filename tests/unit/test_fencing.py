"""The fence header's text form: any resource name round-trips; anything else is a clear 400."""

import pytest

from stigmer.engine.errors import InvalidArgument
from stigmer.engine.fencing import Fence, format_fence, parse_fence


@pytest.mark.parametrize("resource", ["jobs/42", "a:b:c", "ü/ß %", "x" * 1024, "sp ace", "100%"])
def test_any_resource_round_trips(resource):
    text = format_fence(resource, 7)
    assert text.isascii() and parse_fence(text) == Fence(resource, 7) and str(Fence(resource, 7)) == text


@pytest.mark.parametrize("text", ["", "jobs", "jobs:", ":3", "jobs:0", "jobs:-1", "jobs:x", "jobs:1.5", "jobs:٣",
                                  "jobs:" + "9" * 20, "%FF:1"])
def test_malformed_fences_are_invalid_arguments(text):
    with pytest.raises(InvalidArgument) as info:
        parse_fence(text)
    assert info.value.details["field"] == "fence"
