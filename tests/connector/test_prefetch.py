"""Read-ahead keeps order, stops early without hanging, and re-raises the reader's error in the caller."""

import pytest

from connector.core.prefetch import read_ahead


def test_order_is_kept():
    assert list(read_ahead(iter(range(50)))) == list(range(50))


def test_error_surfaces_after_the_pages_before_it():
    def pages():
        yield 1
        yield 2
        raise ConnectionError("shop went away")

    seen = []
    with pytest.raises(ConnectionError, match="shop went away"):
        for page in read_ahead(pages()):
            seen.append(page)
    assert seen == [1, 2]


def test_consumer_stopping_early_does_not_hang():
    consumed = 0
    for page in read_ahead(iter(range(1000)), depth=1):
        consumed += 1
        if page == 3:
            break
    assert consumed == 4
