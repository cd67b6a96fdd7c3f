"""A damaged, altered, truncated or wrongly decrypted archive is refused by the real CLI with
exit 1 and one line, and nothing is written: the data dir stays absent, the PostgreSQL
schema gets no table."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from ..cli.conftest import initialized_template  # noqa: F401 - the fixture: one `lucky init` per worker
from ..cli.process import lucky
from ..services import POSTGRES_URL

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def archives(initialized_template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A plain and an encrypted archive of a fresh instance, made by `lucky backup now`."""
    base = tmp_path_factory.mktemp("archives")
    data_dir = base / "data"
    shutil.copytree(initialized_template, data_dir)
    (base / "pass").write_text(PASSPHRASE + "\n")
    made = {}
    for kind, extra in (("plain", []), ("encrypted", ["--passphrase-file", base / "pass"])):
        result = lucky("backup", "now", "--data-dir", data_dir, "--to", base / kind, *extra)
        assert result.code == 0, result
        made[kind] = Path(result.out.splitlines()[-1])
    made["passphrase"] = base / "pass"
    return made


def _truncate(at: Callable[[int], int]) -> Callable[[bytes], bytes]:
    return lambda data: data[:at(len(data))]


def _flip(at: Callable[[bytes], int]) -> Callable[[bytes], bytes]:
    def flip(data: bytes) -> bytes:
        where = at(data)
        return data[:where] + bytes([data[where] ^ 0x01]) + data[where + 1:]

    return flip


def _without(member: str) -> Callable[[bytes], bytes]:
    """The same archive, rewritten with tarfile, less one member."""

    def drop(data: bytes) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(data)) as source, tarfile.open(fileobj=out, mode="w") as copy:
            for info in source:
                if info.name != member:
                    copy.addfile(info, source.extractfile(info))
        return out.getvalue()

    return drop


PLAIN_DAMAGE = {
    "cut in half": (_truncate(lambda n: n // 2), "truncated"),
    "cut by one byte": (_truncate(lambda n: n - 1), "truncated"),
    "cut after the summary": (_truncate(lambda n: 4608), "truncated"),
    "only a few bytes": (_truncate(lambda n: 100), "too short"),
    "a byte of the summary": (_flip(lambda d: 600), "summary is damaged"),
    "a byte of a row": (_flip(lambda d: d.index(b'"root"') + 2), "damaged"),
    "a byte of the manifest": (_flip(lambda d: d.rindex(b'"sha256"') + 3), "damaged"),
    "a byte of the end padding": (_flip(lambda d: len(d) - 1), "damaged"),
    "a missing member": (_without("tables/users/000001.jsonl"), "member tables/users/000001.jsonl is missing"),
    "no manifest": (_without("manifest.json"), "no manifest"),
}
ENCRYPTED_DAMAGE = {
    "cut in half": (_truncate(lambda n: n // 2), "truncated"),
    "cut by one byte": (_truncate(lambda n: n - 1), "truncated or damaged"),
    "a byte of the header": (_flip(lambda d: 40), "damaged"),
    "a byte of the ciphertext": (_flip(lambda d: 8 + 4096 + 100), "fails authentication"),
}


def _schema_tables(url: str | None) -> int:
    if url is None:
        return 0
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    with psycopg.connect(POSTGRES_URL) as conn:
        row = conn.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)).fetchone()
    return int(row[0]) if row else 0


def _refused(archive: Path, target_url: str | None, tmp_path: Path, expected: str, *extra: str | Path) -> None:
    new = tmp_path / "new"
    database = ["--database", target_url] if target_url else []
    result = lucky("backup", "restore", archive, "--data-dir", new, *database, *extra)
    line = result.assert_one_line_error(code=1)
    assert expected in line, line
    assert not new.exists()
    assert _schema_tables(target_url) == 0


@pytest.mark.parametrize("damage", list(PLAIN_DAMAGE))
def test_a_damaged_archive_is_refused_and_nothing_is_written(archives: dict[str, Path], damage: str,
                                                             target_url: str | None, tmp_path: Path) -> None:
    change, expected = PLAIN_DAMAGE[damage]
    bad = tmp_path / archives["plain"].name
    bad.write_bytes(change(archives["plain"].read_bytes()))
    _refused(bad, target_url, tmp_path, expected)
    verify = lucky("backup", "verify", bad)
    assert expected in verify.assert_one_line_error(code=1)


@pytest.mark.parametrize("damage", list(ENCRYPTED_DAMAGE))
def test_a_damaged_encrypted_archive_is_refused(archives: dict[str, Path], damage: str, target_url: str | None,
                                                tmp_path: Path) -> None:
    change, expected = ENCRYPTED_DAMAGE[damage]
    bad = tmp_path / archives["encrypted"].name
    bad.write_bytes(change(archives["encrypted"].read_bytes()))
    _refused(bad, target_url, tmp_path, expected, "--passphrase-file", archives["passphrase"])


def test_a_wrong_or_missing_passphrase_is_refused(archives: dict[str, Path], target_url: str | None,
                                                  tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    _refused(archives["encrypted"], target_url, tmp_path, "wrong passphrase", "--passphrase-file", wrong)
    _refused(archives["encrypted"], target_url, tmp_path, "encrypted: give its passphrase")


def test_the_intact_archives_verify(archives: dict[str, Path]) -> None:
    assert lucky("backup", "verify", archives["plain"]).code == 0
    result = lucky("backup", "verify", archives["encrypted"], "--passphrase-file", archives["passphrase"])
    assert result.code == 0, result
    assert "every checksum matches" in result.out


def test_a_non_empty_data_dir_or_a_used_database_is_refused(archives: dict[str, Path], target_url: str | None,
                                                            tmp_path: Path) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    line = lucky("backup", "restore", archives["plain"], "--data-dir", occupied).assert_one_line_error(code=1)
    assert "is not empty" in line
    assert [p.name for p in occupied.iterdir()] == ["keep.txt"]
    if target_url is None:
        return
    first = lucky("backup", "restore", archives["plain"], "--data-dir", tmp_path / "first", "--database", target_url)
    assert first.code == 0, first
    tables = _schema_tables(target_url)
    again = lucky("backup", "restore", archives["plain"], "--data-dir", tmp_path / "again", "--database", target_url)
    assert "already holds Lucky tables" in again.assert_one_line_error(code=1)
    assert not (tmp_path / "again").exists() and _schema_tables(target_url) == tables


@pytest.mark.parametrize("args, expected", [
    (["backup", "now", "--to", "http://example.com/x"], "give a folder or an s3://"),
    (["backup", "now", "--passphrase-file", "/no/such/file"], "cannot read the passphrase file"),
    (["backup", "restore", "{config}", "--data-dir", "{new}"], "not a Lucky archive"),
    (["backup", "restore", "{archive}", "--data-dir", "{new}", "--database", "mysql://x/y"], "--database must be"),
    (["backup", "restore", "{archive}", "--data-dir", "{new}", "--database", "postgresql://postgres@127.0.0.1:1/x"],
     "cannot reach postgresql 127.0.0.1:1/x"),
], ids=["bad --to", "no passphrase file", "not an archive", "bad --database", "database down"])
def test_bad_input_is_one_line_and_changes_nothing(archives: dict[str, Path], initialized_template: Path,
                                                   args: list[str], expected: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(initialized_template, data_dir)
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    values = {"config": str(data_dir / "lucky.toml"), "new": str(tmp_path / "new"), "archive": str(archives["plain"])}
    command = [a.format(**values) for a in args]
    if command[1] == "now":
        command += ["--data-dir", str(data_dir)]
    line = lucky(*command).assert_one_line_error(code=1)
    assert expected in line, line
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before
    assert not (tmp_path / "new").exists()
