import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """A real, throw-away Prefect server (and database) for the flow runs of these tests."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
