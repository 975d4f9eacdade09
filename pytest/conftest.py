import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from busclient import Busrtd  # noqa: E402


@pytest.fixture
def broker():
    with Busrtd() as b:
        yield b
