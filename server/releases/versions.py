"""Release versions (semantic versioning 2.0.0) and the names releases are filed under.

Versions are parsed and compared by the `semver` package: 1.10.0 > 1.9.0, a pre-release is
below its release (1.0.0-rc.1 < 1.0.0), numeric identifiers compare as numbers and below
alphanumeric ones (1.0.0-2 < 1.0.0-10 < 1.0.0-a), and build metadata is ignored
(1.0.0+a == 1.0.0+b). A leading `v` is accepted, as Tauri's updater accepts it.
"""

from __future__ import annotations

import hashlib

from semver import Version

from ..errors import LuckyError, validation_failed

PLATFORMS = ("android", "ios", "windows", "macos", "linux", "web")
DESKTOP = frozenset({"windows", "macos", "linux"})
CHANNELS = ("stable", "beta")
ARCHES = ("x86_64", "aarch64", "i686", "armv7")
# Tauri's `{{target}}` -> our platform (PROTOCOL.md, "Desktop updates").
TAURI_TARGETS = {"windows": "windows", "darwin": "macos", "linux": "linux"}
MAX_VERSION_CHARS = 128


def parse_version(text: str | None) -> Version | None:
    """The semantic version in `text` (a leading `v` allowed), or None if it is not one."""
    if text is None or not text.isascii() or len(text) > MAX_VERSION_CHARS:
        return None
    if text[:1] in ("v", "V"):
        text = text[1:]
    try:
        return Version.parse(text)
    except (ValueError, TypeError):
        return None


def require_version(text: str | None, field: str) -> Version:
    """The version in `text`; 422 naming `field` when it is missing or not a semantic version."""
    if not text:
        raise validation_failed(field, "required: a semantic version such as 1.4.2 or 2.0.0-beta.1")
    version = parse_version(text)
    if version is None:
        raise validation_failed(field, "a semantic version such as 1.4.2 or 2.0.0-beta.1 (semver.org)")
    return version


def version_key(version: Version) -> str:
    """The version without build metadata: what makes two releases the same version."""
    return str(version.replace(build=None))


def require_choice(value: str | None, field: str, choices: tuple[str, ...], default: str | None = None) -> str:
    """`value` if it is one of `choices` (`default` when empty); 422 naming `field` otherwise."""
    if not value:
        if default is not None:
            return default
        raise validation_failed(field, f"required: one of {', '.join(choices)}")
    if value not in choices:
        raise validation_failed(field, f"one of {', '.join(choices)}")
    return value


def require_arch(platform: str, arch: str | None) -> str:
    """A package's architecture: empty (any), or one of ARCHES for a desktop platform."""
    if not arch:
        return ""
    if platform not in DESKTOP:
        raise validation_failed("arch", f"only desktop platforms ({', '.join(sorted(DESKTOP))}) have an arch")
    return require_choice(arch, "arch", ARCHES)


def rollout_bucket(release_id: int, device_id: str) -> int:
    """A device's stable place (0..99) in a release's staged rollout: offered when below the
    rollout percentage. Hashed with the release id, so each release samples other devices."""
    digest = hashlib.sha256(f"{release_id}:{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def check_rollout(rollout: int) -> int:
    if not 0 <= rollout <= 100:
        raise validation_failed("rollout", "a percentage from 0 to 100")
    return rollout


def gone(message: str) -> LuckyError:
    return LuckyError(410, "gone", message)


__all__ = ["ARCHES", "CHANNELS", "DESKTOP", "PLATFORMS", "TAURI_TARGETS", "Version", "check_rollout", "gone",
           "parse_version", "require_arch", "require_choice", "require_version", "rollout_bucket", "version_key"]
