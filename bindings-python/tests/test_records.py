"""Records exported as JSON Lines and imported into a new vault through the Python binding:
paths and file objects, text and binary; a malformed line raises ConfigError naming it."""

import io
import json

import pytest

import bucketsync
from bucketsync import ExportReport, ImportReport, Vault, VaultKey


def folder(tmp_path):
    return f"file://{tmp_path / 'bucket'}"


def contents(vault):
    return {k: vault.get(k) for k in vault.keys()}


def test_what_one_vault_exports_a_new_vault_imports(tmp_path):
    store = folder(tmp_path)
    with Vault.create(store, VaultKey.generate(), state=tmp_path / "a.state") as a, \
         Vault.create(store, VaultKey.generate(), state=tmp_path / "b.state") as b:
        a.put("notes/a", "hello")
        a.put(b"bin\x00\xff", b"\x00\x01\xfe\xff")
        a.put("theme", "dark")
        a.put("theme", "light")
        a.put("gone", "soon")
        a.delete("gone")

        # ANCHOR: export_import
        path = tmp_path / "records.jsonl"
        report = a.export_records(path)
        assert isinstance(report, ExportReport)
        assert (report.lines, report.deleted, report.history, report.files) == (4, 1, 0, 0)
        assert repr(report) == "ExportReport(lines=4, deleted=1, history=0, files=0)"
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert [line.get("key", line.get("key_base64")) for line in lines] == \
            ["YmluAP8=", "gone", "notes/a", "theme"]
        assert lines[0]["value_base64"] == "AAH+/w=="
        assert lines[1]["deleted"] is True and "value" not in lines[1]
        assert lines[3]["value"] == "light" and lines[3]["device"] == a.device
        assert isinstance(lines[3]["time"], int)

        report = b.import_records(str(path))
        assert isinstance(report, ImportReport)
        assert (report.lines, report.imported, report.unchanged) == (4, 3, 1)
        # ANCHOR_END: export_import
        assert contents(b) == contents(a)
        assert b.get("gone") is None

        # A text stream with history, then a binary one: nothing changes the second time.
        text = io.StringIO()
        assert a.export_records(text, history=True).history == 2
        again = b.import_records(io.StringIO(text.getvalue()))
        assert (again.imported, again.deleted, again.unchanged, again.history) == (0, 0, 4, 2)
        binary = io.BytesIO()
        a.export_records(binary)
        assert binary.getvalue().decode() == path.read_text()
        binary.seek(0)
        assert b.import_records(binary).imported == 0
        assert "ImportReport(lines=4, imported=0" in repr(b.import_records(path))
        assert contents(b) == contents(a)

        # What b imported is b's own writes: they sync to b's vault.
        assert b.sync().errors == []


def test_lines_from_another_tool_and_a_malformed_line(tmp_path):
    with Vault.create(folder(tmp_path), VaultKey.generate(), state=tmp_path / "b.state") as b:
        b.put("kept", "as it was")
        lines = b'{"key": "x1", "value": "one"}\n\n{"key": "kept", "value": "replaced"}\n'
        report = b.import_records(io.BytesIO(lines))
        assert (report.lines, report.imported) == (2, 2)
        assert b.get("kept") == b"replaced"

        broken = io.StringIO('{"key": "x2", "value": "two"}\n{"key": "x3"}\n[1, 2]\n')
        with pytest.raises(bucketsync.ConfigError) as error:
            b.import_records(broken)
        assert error.value.category == "config"
        assert "line 2 of the import has no \"value\"" in str(error.value)
        assert "nothing was imported" in str(error.value)
        assert b.get("x2") is None

        with pytest.raises(FileNotFoundError):
            b.import_records(tmp_path / "missing.jsonl")
        with pytest.raises(TypeError):
            b.export_records(42)
