"""Helpers for tests: valid identity numbers and real Excel files."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from pathlib import Path

import openpyxl
import pandas as pd

from jingzhun.normalise import check_digits

AS_OF = date(2026, 11, 22)


def valid_id(body17: str) -> str:
    return body17 + check_digits(pd.Series([body17])).iloc[0]


def write_xlsx(path: Path, sheets: dict[str, list[list]], merge_title: bool = False) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
        if merge_title:
            ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(2, len(rows[-1])))
    wb.save(path)
    return path


def flag(rule="RM_CAR", household="P1", evidence='{"as_of": "2026-01-01", "records": [1]}', village="620421100201"):
    return {"rule_code": rule, "direction": "remove", "household_id": household, "hukou_household_id": "",
            "id_number": "", "village_code": village, "evidence": evidence, "evidence_text": "t"}


def raised(*rows) -> pd.DataFrame:
    """Flags as the rules return them, with their identity and evidence digest."""
    from jingzhun import warehouse

    frame = pd.DataFrame(list(rows))
    return frame.assign(flag_key=warehouse.flag_keys(frame), evidence_hash=warehouse.evidence_hashes(frame))


def required_tool(*names: str, package: str) -> str:
    """The first of ``names`` on the PATH: a real program a test drives as a person would (a browser, an office
    suite). Locally the test skips without it; CI must have it (.ci/run installs Debian's ``package``)."""
    import os
    import shutil

    import pytest

    found = next((path for name in names if (path := shutil.which(name))), None)
    if not found:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs {names[0]} (.ci/run installs Debian's {package})")
        pytest.skip(f"{names[0]} is not installed")
    return found


def office() -> str:
    """LibreOffice: what the tests open workbooks with, as a person's spreadsheet would."""
    return required_tool("soffice", "libreoffice", package="libreoffice-calc-nogui")


def publish_county(url: str, frames: dict, landing, run_id: str = "r1"):
    """Publish a staged county's registers and flags, with the regions reference its landing folder holds, as a
    nightly run would (no run record); returns (engine, the flags raised)."""
    import pandas as pd

    from jingzhun import labels, warehouse
    from jingzhun.catalogue import RULES
    from jingzhun.engine import flags
    from jingzhun.policy import Policy, ReaderLimits

    engine = warehouse.connect(url)
    raised, _ = flags(frames, Policy(), pd.Timestamp(AS_OF))
    rules = pd.DataFrame({"rule_code": list(RULES), "evaluated": True, "reason": "", "raised": 0})
    names = labels.read_regions(labels.regions_files(landing, None), ReaderLimits())
    warehouse.publish(engine, run_id, pd.DataFrame(), pd.DataFrame(), frames, raised, rules, None, region_names=names)
    return engine, raised


def published_empty(url: str):
    """A warehouse one run has published into, with no register and no flag (what a command reading one needs)."""
    import pandas as pd

    from jingzhun import warehouse
    from jingzhun.engine import FLAG_COLUMNS
    from jingzhun.steps import rules_evaluated

    engine = warehouse.connect(url)
    none = pd.DataFrame({c: pd.Series(dtype="str") for c in FLAG_COLUMNS})
    warehouse.publish(engine, "r0", pd.DataFrame(), pd.DataFrame(), {}, none, rules_evaluated(none, {}), None)
    return engine


def write_padded_xlsx(path: Path, rows: list[list], padding_mib: int, declare: int | None = None,
                      part: str = "xl/sharedStrings.xml") -> Path:
    """A real workbook of ``rows`` whose ``part`` (shared strings by default, or a worksheet or styles) carries
    ``padding_mib`` MiB of elements nobody uses before its closing tag, as an attacker builds one: the padding
    costs a few KB in the archive however large it inflates (one deflate block repeated after full flushes),
    and the archive declares ``declare`` bytes for the part (its true size when None)."""
    import io
    import struct
    import zipfile
    import zlib

    buffer = io.BytesIO()
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(buffer)
    unit = {"xl/sharedStrings.xml": b"<si><t>x</t></si>", "xl/styles.xml": b"<!-- unused style -->"}.get(
        part, b"<!-- unused cells -->")
    block = (unit * ((1 << 20) // len(unit))).ljust(1 << 20)  # one MiB, white space between elements to fill it
    with zipfile.ZipFile(buffer) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    _shared_strings(parts)
    entries = []  # (name, deflated, CRC-32, true size)
    for name, data in parts.items():
        if name != part:
            entries.append((name, zlib.compress(data, 6, -15), zlib.crc32(data), len(data)))
            continue
        closing = data.rindex(b"</")
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        head = deflate.compress(data[:closing]) + deflate.flush(zlib.Z_FULL_FLUSH)
        piece = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)  # the same bytes after every full flush
        tail = deflate.compress(data[closing:]) + deflate.flush()
        crc = zlib.crc32(data[:closing])
        for _ in range(padding_mib):
            crc = zlib.crc32(block, crc)
        entries.append((name, head + piece * padding_mib + tail, zlib.crc32(data[closing:], crc),
                        len(data) + padding_mib * len(block)))
    with open(path, "wb") as out:
        central = b""
        for name, compressed, crc, size in entries:
            declared = declare if name == part and declare is not None else size
            fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, len(compressed), declared)
            encoded = name.encode()
            central += (b"PK\x01\x02" + struct.pack("<H", 20) + fields
                        + struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, out.tell()) + encoded)
            out.write(b"PK\x03\x04" + fields + struct.pack("<HH", len(encoded), 0) + encoded + compressed)
        at = out.tell()
        out.write(central + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(entries), len(entries), len(central), at, 0))
    return path


def _shared_strings(parts: dict[str, bytes]) -> None:
    """openpyxl writes its text inline: move it to xl/sharedStrings.xml, as Excel and WPS write a workbook."""
    import re
    from xml.sax.saxutils import escape

    strings: list[str] = []

    def shared(match: re.Match) -> bytes:
        strings.append(match.group(1).decode())
        return b'<c r="%s" t="s"><v>%d</v></c>' % (match.group(0).split(b'"')[1], len(strings) - 1)

    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet] = re.sub(rb'<c r="[A-Z]+[0-9]+" t="inlineStr"><is><t>(.*?)</t></is></c>', shared, parts[sheet])
    parts["xl/sharedStrings.xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        f'count="{len(strings)}" uniqueCount="{len(strings)}">'
        + "".join(f"<si><t>{escape(t)}</t></si>" for t in strings) + "</sst>").encode()
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(b"</Relationships>", (
        b'<Relationship Id="rIdShared" Target="sharedStrings.xml" Type="http://schemas.openxmlformats.org/'
        b'officeDocument/2006/relationships/sharedStrings"/></Relationships>'))
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(b"</Types>", (
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        b'spreadsheetml.sharedStrings+xml"/></Types>'))


def yaml_text(data) -> str:
    """``data`` as YAML a deployment may supply: every value written out (PyYAML writes an anchor and aliases for an
    object met twice, as the shipped catalogue's shared lists are once loaded; a deployment's YAML may hold none)."""
    import yaml

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data) -> bool:
            return True

    return yaml.dump(data, Dumper=Plain, allow_unicode=True, sort_keys=False)


@contextmanager
def small_disk(path: Path, size: str):
    """A real file system of ``size`` (tmpfs) mounted at ``path``: a disk that fills up, and that can be made
    read-only (:func:`read_only`). Needs the right to mount (root, as CI runs); locally the test skips without it."""
    import os
    import subprocess

    import pytest

    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        if os.environ.get("CI"):
            raise RuntimeError(f"CI needs to mount a small tmpfs: {mounted.stderr.strip()}")
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def read_only(path: Path) -> None:
    """The file system mounted at ``path`` (by :func:`small_disk`) made read-only, as a full or failing disk is."""
    import subprocess

    subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)


def rule_pack(folder: Path, sql: str, deployment: bool = False) -> Path:
    """A rules folder with one rule, RM_CAR's catalogue entry under the code RM_PACK, whose model is ``sql`` (and
    with ``deployment``, the deployment.yaml that adds it)."""
    import yaml

    from jingzhun.catalogue import CATALOGUE

    (folder / "rules").mkdir(parents=True)
    entry = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))["rules"]["RM_CAR"]
    (folder / "rules.yaml").write_text(yaml_text({"rules": {"RM_PACK": entry}}), encoding="utf-8")
    (folder / "rules" / "RM_PACK.sql").write_text(sql, encoding="utf-8")
    if deployment:
        (folder / "deployment.yaml").write_text("rules: rules.yaml\n", encoding="utf-8")
    return folder


def nightly_publish(url, run_id, frames):
    """The rules on staged registers (``frames``), published as a nightly run would."""
    import pandas as pd

    from jingzhun import warehouse
    from jingzhun.catalogue import RULES
    from jingzhun.engine import flags
    from jingzhun.policy import Policy

    raised, skipped = flags(frames, Policy(), pd.Timestamp(AS_OF))
    rules = pd.DataFrame({"rule_code": list(RULES)})
    rules["evaluated"] = ~rules["rule_code"].isin(skipped)
    rules["reason"], rules["raised"] = "", 0
    empty = pd.DataFrame()
    warehouse.publish(warehouse.connect(url), run_id, empty, empty, frames, raised, rules, None)


def decide(path, choices: dict[str, tuple[str, str]], out=None):
    """Fill decisions (flag_key -> (decision, note)) into a review workbook as a steward would."""
    import openpyxl

    from jingzhun.review import HEADERS

    wb = openpyxl.load_workbook(path)
    ws = wb["核实清单"]
    key_col, decision_col, note_col = (HEADERS.index(h) + 1 for h in ("标识", "决定", "备注"))
    for row in range(2, ws.max_row + 1):
        key = ws.cell(row, key_col).value
        if key in choices:
            ws.cell(row, decision_col).value, ws.cell(row, note_col).value = choices[key]
    wb.save(out or path)
    return out or path
