"""The compat tier runs against a `sagewatch local` started per module (tests/local_stack.py)."""

from tests.local_stack import stack

__all__ = ["stack"]
