"""GenBank records: the sequence (ORIGIN) and the feature table's coding sequences (CDS).

A feature's location, as GenBank writes it (1-based, both ends included):
    21563..25384                          one range: the spike gene S
    join(266..13468,13468..21555)         parts read one after the other (ORF1ab: the ribosome
                                          slips back one base at 13468, the -1 frameshift)
    complement(100..200)                  the minus strand: the parts' reverse complement
    <1..200, 1..>200, 467                 a partial end (kept as the range), a single base
Location holds 0-based half-open parts, (start, end, strand), as Python slices them. Locations
that point into another record (ACC.1:1..100) or use order() are refused, naming the line.

Some records split one protein into one CDS per part (Nextstrain's SARS-CoV-2 reference writes
ORF1a 266..13468 and ORF1b 13468..21555, both /protein_id="QHD43415.1"): coding_sequences joins
CDS features that share a protein_id into one join(...), named after the `gene` feature that
spans them (ORF1ab); the parts stay available under their own names too.
"""
import pathlib
import re

from ..errors import SequenceFileError
from ..io.corpora import read_bytes

_COMPLEMENT = str.maketrans("ACGTRYSWKMBDHVNacgtryswkmbdhvn", "TGCAYRSWMKVHDBNtgcayrswmkvhdbn")
_RANGE = re.compile(r"<?(\d+)(?:\.\.>?(\d+))?$")


def reverse_complement(sequence):
    return sequence.translate(_COMPLEMENT)[::-1]


class Location:
    """The parts of a feature, in reading order: [(start, end, strand)], 0-based, end exclusive,
    strand +1 or -1 (read as the reverse complement)."""

    def __init__(self, parts):
        self.parts = [tuple(p) for p in parts]

    def extract(self, sequence):
        pieces = [sequence[s:e] if strand > 0 else reverse_complement(sequence[s:e]) for s, e, strand in self.parts]
        return "".join(pieces)

    def __len__(self):
        return sum(e - s for s, e, _ in self.parts)

    def __eq__(self, other):
        return isinstance(other, Location) and self.parts == other.parts

    def __repr__(self):
        return f"Location({self.parts})"


def parse_location(text):
    """GenBank's location text -> Location; ValueError says what is not understood."""
    text = "".join(text.split())

    def parse(s):
        if s.startswith("complement(") and s.endswith(")"):
            return [(a, b, -strand) for a, b, strand in reversed(parse(s[len("complement("):-1]))]
        if s.startswith("join(") and s.endswith(")"):
            return [part for item in _split_top_level(s[len("join("):-1]) for part in parse(item)]
        if s.startswith("order("):
            raise ValueError("order(...) (parts in no known order) is not supported")
        if ":" in s:
            raise ValueError(f"{s!r} points into another record")
        m = _RANGE.match(s)
        if not m:
            raise ValueError(f"{s!r} is not a location (e.g. 21563..25384, join(1..9,12..20), complement(5..9))")
        start, end = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 1 <= start <= end:
            raise ValueError(f"{s!r}: a range runs from 1 upward, its start before its end")
        return [(start - 1, end, 1)]

    return Location(parse(text))


def _split_top_level(s):
    """'a,join(b,c),d' -> ['a', 'join(b,c)', 'd']: commas outside brackets."""
    items, depth, start = [], 0, 0
    for i, c in enumerate(s):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth < 0:
            raise ValueError(f"unbalanced brackets in {s!r}")
        if c == "," and depth == 0:
            items.append(s[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"unbalanced brackets in {s!r}")
    items.append(s[start:])
    if not all(items):
        raise ValueError(f"an empty part in join({s})")
    return items


class Feature:
    """One row of the feature table: its key (CDS, gene, ...), location, qualifiers and line."""

    def __init__(self, key, location, qualifiers, line):
        self.key, self.location, self.qualifiers, self.line = key, location, qualifiers, line

    def __repr__(self):
        return f"Feature({self.key!r}, {self.location}, {self.qualifiers.get('gene')!r}, line {self.line})"


class GenBankRecord:
    def __init__(self, name, sequence, features):
        self.name, self.sequence, self.features = name, sequence, features

    def coding_sequences(self):
        """{name: Location} of every CDS (see the module's note on CDS parts sharing a protein_id)."""
        return coding_sequences(self)


def read_genbank(path):
    """The first record of a GenBank flat file, checked: a location that cannot be read, sequence
    lines that are not numbered bases, a sequence shorter than LOCUS says, or a feature past its
    end are errors naming the line."""
    path = pathlib.Path(path)
    try:
        text = read_bytes(path).decode("ascii")          # (a .gz file: decompressed)
    except FileNotFoundError:
        raise SequenceFileError(f"GenBank file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SequenceFileError(f"cannot read GenBank file {path}: {e}") from None
    lines = text.splitlines()
    if not lines or not lines[0].startswith("LOCUS"):
        raise SequenceFileError(f"{path} line 1: a GenBank record starts with 'LOCUS', got {lines[0][:40]!r}"
                                if lines else f"{path} is empty")
    locus = lines[0].split()
    name = locus[1] if len(locus) > 1 else path.stem
    declared = int(locus[2]) if len(locus) > 3 and locus[2].isdigit() and locus[3] in ("bp", "aa") else None
    features, sequence, section = [], [], None
    for number, line in enumerate(lines, 1):
        if line.startswith("//"):
            break
        if line[:1].strip():                               # a keyword in column 1 starts a section
            section = line.split()[0]
            continue
        if section == "FEATURES":
            _feature_line(path, number, line, features)
        elif section == "ORIGIN":
            fields = line.split()
            if not fields[0].isdigit() or not all(f.isalpha() for f in fields[1:]):
                raise SequenceFileError(f"{path} line {number}: a sequence line is a position and bases, "
                                        f"got {line.strip()[:40]!r}")
            sequence.append("".join(fields[1:]))
    sequence = "".join(sequence).upper()
    if not sequence:
        raise SequenceFileError(f"{path}: no sequence (an ORIGIN section with numbered lines of bases)")
    if declared is not None and declared != len(sequence):
        raise SequenceFileError(f"{path}: LOCUS declares {declared:,} bp but ORIGIN holds {len(sequence):,}; "
                                "the file is truncated")
    parsed = []
    for f in features:
        try:
            location = parse_location(f["location"])
        except ValueError as e:
            raise SequenceFileError(f"{path} line {f['line']}: {f['key']} location {f['location']!r}: {e}") from None
        if any(end > len(sequence) for _, end, _ in location.parts):
            raise SequenceFileError(f"{path} line {f['line']}: {f['key']} location {f['location']!r} runs past the "
                                    f"sequence's {len(sequence):,} bases")
        parsed.append(Feature(f["key"], location, f["qualifiers"], f["line"]))
    return GenBankRecord(name, sequence, parsed)


def _feature_line(path, number, line, features):
    """Feature keys sit in columns 6-20, locations and /qualifiers from column 22; a location or a
    quoted value may continue on the next lines."""
    key, rest = line[5:21].strip(), line[21:].strip()
    if key:
        features.append({"key": key, "location": rest, "qualifiers": {}, "line": number, "last": None})
        return
    if not features:
        raise SequenceFileError(f"{path} line {number}: a qualifier or location before any feature key")
    feature = features[-1]
    if rest.startswith("/"):
        name, _, value = rest[1:].partition("=")
        feature["qualifiers"][name] = value
        feature["last"] = name                              # the qualifier a continuation line belongs to
    elif feature["last"] is not None:                       # a long value continues (a translation: no spaces)
        last = feature["last"]
        feature["qualifiers"][last] += ("" if last == "translation" else " ") + rest
    else:
        feature["location"] += rest                         # a location over several lines


def _value(qualifiers, name):
    value = qualifiers.get(name)
    return value.strip('"') if isinstance(value, str) else None


def coding_sequences(record):
    """{name: Location} for every CDS, named by /gene (else /locus_tag, /product). CDS features
    sharing a /protein_id also appear joined, under the name of the `gene` feature that spans them."""
    out, by_protein = {}, {}
    for f in record.features:
        if f.key != "CDS":
            continue
        name = _value(f.qualifiers, "gene") or _value(f.qualifiers, "locus_tag") or _value(f.qualifiers, "product")
        if not name:
            raise SequenceFileError(f"{record.name} line {f.line}: a CDS with no /gene, /locus_tag or /product")
        if name in out:
            raise SequenceFileError(f"{record.name} line {f.line}: two CDS features named {name!r}")
        out[name] = f.location
        protein = _value(f.qualifiers, "protein_id")
        if protein:
            by_protein.setdefault(protein, []).append(f.location)
    for parts in by_protein.values():
        if len(parts) < 2:
            continue
        joined = Location([p for loc in parts for p in loc.parts])
        lo, hi = min(s for s, _, _ in joined.parts), max(e for _, e, _ in joined.parts)
        spans = [_value(g.qualifiers, "gene") for g in record.features if g.key == "gene"
                 and g.location.parts[0][0] == lo and g.location.parts[-1][1] == hi]
        name = spans[0] if spans and spans[0] else "+".join(n for n, loc in out.items() if loc in parts)
        out.setdefault(name, joined)
    return out
