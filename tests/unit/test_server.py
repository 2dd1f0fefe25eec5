import os

from stigmer.config import Settings
from stigmer.server import build


def test_uvicorn_config(tmp_path):
    settings = Settings.load({"data_dir": str(tmp_path / "d"), "port": 7999}, environ={})
    server = build(settings)
    config = server.config
    assert config.proxy_headers is False  # X-Forwarded-For is the app's trusted-proxy setting
    assert config.server_header is False and config.access_log is False
    assert config.http.head_timeout == 10.0 and config.timeout_keep_alive == 5.0
    quick = Settings.load({"data_dir": str(tmp_path / "d"), "head_timeout_seconds": 1.5}, environ={})
    assert build(quick, http="h11").config.http.head_timeout == 1.5
    assert f"http://127.0.0.1:7999 with data in {os.path.abspath(tmp_path / 'd')} (store sqlite, auth open mode" \
        in server.banner
    assert server.banner_fields["auth"] == "open" and server.banner_fields["store"] == "sqlite"
    keyed = build(Settings.load({"data_dir": str(tmp_path / "d"), "admin_key": "stg_k"}, environ={}))
    assert "(store sqlite, auth API keys)" in keyed.banner and "stg_k" not in keyed.banner
    assert server.banner.endswith("and semvec, statevec, cntrlnode, agentstate, statewave, mcp")
