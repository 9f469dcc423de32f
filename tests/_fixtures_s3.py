"""Session-scoped s3 server for the backend tests (started by the suite itself).

A moto server in its own process (so it does not share the test process's GIL),
with fake credentials in the environment for the whole session: the stores find
them through the standard AWS chain, as they would in production.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import botocore.session
import pytest
from _fixtures_valkey import free_port, run_server

S3_REGION = "us-east-1"
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "pirn-like-test",
    "AWS_SECRET_ACCESS_KEY": "pirn-like-test-secret",
    "AWS_DEFAULT_REGION": S3_REGION,
}


def _answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a real S3-compatible server (moto)."""
    workdir = tmp_path_factory.mktemp("s3")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _FAKE_CREDENTIALS.items():
            patch.setenv(name, value)
        # No profile or config file of the machine may override the fake credentials.
        patch.setenv("AWS_CONFIG_FILE", str(workdir / "no-config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(workdir / "no-credentials"))
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        with run_server(
            argv, log=workdir / "moto.log", ready=lambda: _answers_http(f"{url}/moto-api/")
        ):
            yield url


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the session's server, unique to the test."""
    name = f"pirn-like-{uuid.uuid4().hex[:16]}"
    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=s3_endpoint, region_name=S3_REGION
    )
    client.create_bucket(Bucket=name)
    client.close()
    return name
