"""FASTA files (plain or gzip) read into records, every line checked; and the one policy for the
letters a genome may hold.

    >Wuhan/Hu-1/2019 optional description      a header: '>' then the record's name (up to the
    ATTAAAGGTTTATACCTTCC...                   first space); sequence lines follow, any width

Letters: the IUPAC nucleotide codes, in either case: A C G T (U, RNA's T), the ambiguity codes
R Y S W K M B D H V (two or three possible bases), N (any base: sequencers write runs of N where a
stretch was not read), and '-' (a gap in an alignment). Anything else is an error naming the line,
the column and the character.

Policy (clean_sequence, used by everything downstream): upper case; U becomes T; gaps are removed
(the genomes here are not aligned, a gap is no base); every ambiguity code becomes N. A model then
sees five letters, A C G T N: an ambiguity code's partial knowledge ("A or G") is dropped on
purpose, since it marks a read the sequencer was unsure of, not biology. How much N a genome may
hold before it is left out is the corpus's choice (see sarscov2.py), not the reader's.
"""
import gzip
import pathlib
import zlib

from ..errors import SequenceFileError

BASES = "ACGT"
AMBIGUOUS = "RYSWKMBDHVN"
VALID = set((BASES + "U" + AMBIGUOUS + "-").encode()) | set((BASES + "U" + AMBIGUOUS).lower().encode())
_VALID_BYTES = bytes(sorted(VALID))
# clean_sequence in one C-level pass: U -> T, ambiguity codes -> N, lower -> upper, '-' deleted
_CLEAN = str.maketrans({**{c: c.upper() for c in "acgtn"}, "U": "T", "u": "T",
                        **{c: "N" for c in AMBIGUOUS + AMBIGUOUS.lower()}, "-": None})
MAX_FASTA_BYTES = 2 ** 30          # the whole file is held in memory (uncompressed): 1 GiB at most


class FastaRecord:
    """One sequence: its name (the header up to the first space), the rest of the header, the
    sequence's letters as written, and the header's line number (for messages)."""

    __slots__ = ("name", "description", "sequence", "line")

    def __init__(self, name, description, sequence, line):
        self.name, self.description, self.sequence, self.line = name, description, sequence, line

    def __repr__(self):
        return f"FastaRecord({self.name!r}, {len(self.sequence):,} letters, line {self.line})"


def clean_sequence(sequence):
    """The policy above: upper case, U -> T, gaps removed, ambiguity codes -> N."""
    return sequence.translate(_CLEAN)


def unknown_fraction(sequence):
    """The share of letters that are not A, C, G or T (after clean_sequence: the N's)."""
    if not sequence:
        return 0.0
    known = sum(sequence.count(b) for b in BASES)
    return 1 - known / len(sequence)


def _read_bytes(path, max_bytes):
    path = pathlib.Path(path)
    if not path.is_file():
        raise SequenceFileError(f"FASTA file {path} does not exist" if not path.exists()
                                else f"FASTA input {path} is not a file (a directory?)")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":                      # gzip's magic number, whatever the file's name
            with gzip.open(path, "rb") as f:
                raw = f.read(max_bytes + 1)
                if len(raw) <= max_bytes:
                    f.read(1)                           # at the end: a truncated stream raises EOFError here
    except (OSError, EOFError, zlib.error) as e:        # a truncated or corrupt gzip stream
        raise SequenceFileError(f"cannot read FASTA file {path}: {e}; a gzip file may be truncated, "
                                "download it again") from None
    if len(raw) > max_bytes:
        raise SequenceFileError(f"FASTA file {path} holds more than {max_bytes:,} bytes; split it first")
    return raw


def read_fasta(path, max_bytes=MAX_FASTA_BYTES):
    """Every record of a FASTA file (plain or gzip), in file order, each line checked: a sequence
    line before the first header, an empty name, a letter outside the IUPAC codes, a record with
    no sequence and a name used twice are errors naming the line. Letters are kept as written;
    clean_sequence applies the policy."""
    raw = _read_bytes(path, max_bytes)
    records, names, lines, header = [], {}, [], None

    def finish():
        if header is None:
            return
        name, description, at = header
        if not lines:
            raise SequenceFileError(f"{path} line {at}: record {name!r} has no sequence")
        records.append(FastaRecord(name, description, b"".join(lines).decode("ascii"), at))

    for number, line in enumerate(raw.split(b"\n"), 1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue                                    # blank lines separate nothing; allowed
        if line.startswith(b">"):
            finish()
            try:
                text = line[1:].decode("ascii").strip()
            except UnicodeDecodeError:
                raise SequenceFileError(f"{path} line {number}: the header is not ASCII text") from None
            name, _, description = text.partition(" ")
            if not name:
                raise SequenceFileError(f"{path} line {number}: a header ('>') with no name")
            if name in names:
                raise SequenceFileError(f"{path} line {number}: record {name!r} appears twice "
                                        f"(first at line {names[name]})")
            names[name], header, lines = number, (name, description.strip(), number), []
            continue
        if header is None:
            raise SequenceFileError(f"{path} line {number}: sequence letters before the first '>' header; "
                                    "is this a FASTA file?")
        line = line.strip()
        bad = line.translate(None, _VALID_BYTES)         # the letters that are not IUPAC codes
        if bad:
            column = next(i for i, b in enumerate(line, 1) if b not in VALID)
            shown = repr(chr(bad[0])) if 32 <= bad[0] < 127 else f"byte 0x{bad[0]:02x}"
            raise SequenceFileError(f"{path} line {number} column {column}: {shown} is not a nucleotide "
                                    "(IUPAC codes A C G T U R Y S W K M B D H V N, or '-')")
        lines.append(line)
    finish()
    if not records:
        raise SequenceFileError(f"{path} holds no FASTA records (no line starting with '>')")
    return records
