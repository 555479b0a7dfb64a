"""Fuzzing the one masking rule (exporter.secrets.mask_url): a drawn secret in any shape it travels in (a URL's
password with ``@`` inside, an upper-case scheme, a query token, an Authorization header, a libpq value, a
mapping's entry), inside any text, never survives it; masking twice changes nothing; and what the secret was for
(the scheme, the user, the host, the parameter's name) stays readable."""

from __future__ import annotations

from hypothesis import given

from exporter.secrets import MASK, mask_url
from tests.fuzzing import FUZZ, report_inputs, tried  # noqa: F401 - report_inputs: fixture
from tests.secret_shapes import MARKER, Shaped, separators, shapes, surroundings


@FUZZ
@given(shapes, surroundings, separators, separators, surroundings)
def test_no_drawn_secret_survives_masking_whatever_the_text_around_it(shaped: Shaped, before: str, sep: str,
                                                                      sep_after: str, after: str) -> None:
    tried(__name__, "secret in text")
    masked = mask_url(f"{before}{sep}{shaped.text}{sep_after}{after}")
    for secret in shaped.hidden:
        assert secret not in masked
    assert MARKER not in masked  # nor any piece of one (every secret holds the marker; nothing else drawn does)
    assert mask_url(masked) == masked


@FUZZ
@given(shapes)
def test_a_masked_secret_keeps_what_it_was_for(shaped: Shaped) -> None:
    tried(__name__, "shape alone")
    masked = mask_url(shaped.text)
    assert MASK in masked
    for part in shaped.kept:
        assert part in masked
