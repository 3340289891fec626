"""Arthur's paging: a page of a list, and the fields every paged answer carries."""

from __future__ import annotations

import math
from typing import Any


def pages(items: list[Any], page: int, page_size: int) -> tuple[list[Any], dict[str, int]]:
    """One page of `items` and Arthur's paging fields (page, page_size, total_pages, total_count)."""
    start = (page - 1) * page_size
    return items[start : start + page_size], {
        "page": page,
        "page_size": page_size,
        "total_pages": max(1, math.ceil(len(items) / page_size)),
        "total_count": len(items),
    }
