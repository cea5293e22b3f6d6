"""The one JSON response class of the API: it never fails on a value it was given."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse as _StarletteJSON

from jobport.domain.values import clean


class JSONResponse(_StarletteJSON):
    """Strict JSON out (no NaN, UTF-8), and a cleaned copy rather than a 500 for a value that
    is not (a lone surrogate or NaN in a row stored before input was checked)."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (ValueError, UnicodeEncodeError, TypeError):
            return json.dumps(
                clean(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")
            ).encode("utf-8")
