"""The deployment files (issue 14, point 4), read as what they are: no container engine runs
here, so these checks hold the compose file, the Dockerfiles and `portal serve`'s options to
what docs/deploy.md promises. The proxy configuration itself runs in test_nginx_proxy.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.app.cli_setup import serve_options
from portal.kernel.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
EXACT_TAG = re.compile(r"^[\w./-]+:(?:\d+\.\d+[\w.-]*|RELEASE\.[\w-]+)$")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_every_image_is_pinned_to_an_exact_version() -> None:
    images = [s["image"] for s in compose()["services"].values() if "image" in s]
    for dockerfile in (ROOT / "Dockerfile", ROOT / "deploy" / "nginx" / "Dockerfile"):
        images += re.findall(r"^FROM\s+(\S+)", dockerfile.read_text(), flags=re.M)
    assert len(images) >= 5
    for image in images:
        assert EXACT_TAG.match(image), f"{image} is not pinned to an exact version"


def test_the_workspace_is_reachable_only_through_internal_networks() -> None:
    data = compose()
    networks = data["networks"]
    workspace = data["services"]["workspace"]
    assert workspace["environment"]["PORTAL_SERVE"] == "workspace"
    assert "ports" not in workspace
    for name in workspace["networks"]:
        assert networks[name].get("internal") is True, name
    for name in ("portal", "portal-2"):
        service = data["services"][name]
        assert service["environment"]["PORTAL_SERVE"] == "reporter"
        assert "ports" not in service
    # only the proxy publishes ports; the staff port is bound to WORKSPACE_BIND (loopback
    # unless the operator names a LAN address)
    published = {n for n, s in data["services"].items() if "ports" in s}
    assert published == {"proxy"}
    assert "${WORKSPACE_BIND:-127.0.0.1}:8443:9443" in data["services"]["proxy"]["ports"]


def test_the_portal_trusts_forwarded_headers_from_the_proxy_only() -> None:
    data = compose()
    proxy = data["services"]["proxy"]["networks"]
    for name, network in (("portal", "edge"), ("workspace", "staff")):
        trusted = data["services"][name]["environment"]["PORTAL_TRUSTED_PROXIES"]
        assert trusted == proxy[network]["ipv4_address"]


def test_the_scheduler_runs_both_jobs_on_their_intervals() -> None:
    scheduler = compose()["services"]["scheduler"]
    script = "\n".join(scheduler["command"])
    assert "portal notify run" in script and "portal retention run" in script
    assert "sleep 300" in script and "% 288" in script  # 5 minutes; 288 x 5 min = daily


def test_the_portal_image_runs_as_a_user_and_checks_its_health() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER\s+portal\s*$", text, flags=re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, flags=re.M)


def test_serve_believes_forwarded_headers_only_from_configured_proxies() -> None:
    plain = serve_options(Settings.from_env({}))
    assert plain["proxy_headers"] is False
    assert plain["access_log"] is False and plain["server_header"] is False
    assert 0 < plain["timeout_keep_alive"] <= 5
    assert plain["h11_max_incomplete_event_size"] <= 64 * 1024
    behind = serve_options(
        Settings.from_env({"PORTAL_TRUSTED_PROXIES": "172.28.1.10, 10.1.0.0/16"})
    )
    assert behind["proxy_headers"] is True
    assert behind["forwarded_allow_ips"] == ["172.28.1.10", "10.1.0.0/16"]
    with pytest.raises(SettingsError, match="PORTAL_TRUSTED_PROXIES"):
        Settings.from_env({"PORTAL_TRUSTED_PROXIES": "*"})
