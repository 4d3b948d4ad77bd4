"""Bad option values stop mitmdump at start-up with mitmproxy's OptionsError naming the option.

(mitmproxy's script loader prints the OptionsError with its traceback; the last line is ours.)
"""

from __future__ import annotations

import pytest

from support.proxy import MitmProxyError

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("options", "message"), [
    ({"vcr_latency": "fast"}, "vcr_latency must be 'none', 'recorded' or a non-negative factor"),
    ({"vcr_ignore_json": ["a..b"]}, "vcr_ignore_json: 'a..b'"),
    ({"vcr_cassette": "../up"}, "vcr_cassette: invalid cassette name '../up'"),
    ({"vcr_mode": "sometimes"}, "vcr_mode"),
])
def test_bad_options_are_refused_at_start(make_proxy, tmp_path, options, message) -> None:
    with pytest.raises(MitmProxyError) as raised:
        make_proxy(mode=None, vcr_dir=tmp_path / "c", options=options)
    log = str(raised.value)
    assert message in log
    assert "Error logged during startup, exiting" in log
