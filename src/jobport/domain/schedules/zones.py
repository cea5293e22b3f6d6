"""Time zones: an IANA or Windows zone name, in any case, resolved to its IANA name."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from tzlocal.windows_tz import win_tz


def resolve_time_zone(name: str) -> str:
    """IANA name for an IANA or Windows zone name; ValueError('unknown time zone ...') otherwise."""
    iana = _resolve_time_zone(name)
    if iana is None:
        raise ValueError(
            f"unknown time zone {name!r}: give an IANA name such as 'Australia/Sydney' "
            "or a Windows name such as 'AUS Eastern Standard Time'"
        )
    return iana


@lru_cache(maxsize=1024)
def _resolve_time_zone(name: str) -> str | None:
    if _is_zone(name):
        return name
    if name in win_tz:
        return win_tz[name]
    return _zones_by_folded_name().get(name.casefold())


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=1)
def _zones_by_folded_name() -> dict[str, str]:
    """Every known name, case-folded, so 'australia/sydney' and 'utc' are understood too."""
    names = {iana.casefold(): iana for iana in available_timezones()}
    names.update({windows.casefold(): iana for windows, iana in win_tz.items()})
    return names
