"""Find a reference gene in genomes that are not aligned to the reference, and translate it.

The genomes differ in length (their ends were sequenced to different lengths; some carry
deletions), so the reference's coordinates do not carry over. Each boundary of the gene (every
part's start and end: two for S, four for ORF1ab's join) is placed by an anchor: a k-mer of the
reference close to the boundary (the first one tried lies inside the gene against the boundary,
then ones k, 2k, ... bases upstream and downstream, outside and inside the gene), unique in the reference and without N,
looked up in the genome within `window` bases of where the reference has it. The first anchor found
exactly once there places the boundary (the bases between anchor and boundary are assumed to have
no insertion or deletion). A genome where no anchor of a boundary is found (an N run over it, or
mutations in every anchor), or whose gene comes out with a length that breaks the reading frame
(not a multiple of 3 when the reference's is), is reported with the reason and left out.

    locator = GeneLocator(reference_sequence, location)       # location: genbank.Location
    gene = locator.extract(genome)                           # the gene's bases, or GeneNotFound
"""
from .genbank import Location

# The standard genetic code: codon -> amino acid ('*' = stop), bases in the order T C A G.
_ORDER = "TCAG"
_AMINO = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
GENETIC_CODE = {a + b + c: _AMINO[16 * i + 4 * j + k] for i, a in enumerate(_ORDER)
                for j, b in enumerate(_ORDER) for k, c in enumerate(_ORDER)}


def translate(cds):
    """The protein a coding sequence spells, codon by codon ('*' a stop, 'X' a codon holding N);
    a last incomplete codon is ignored."""
    return "".join(GENETIC_CODE.get(cds[i:i + 3], "X") for i in range(0, len(cds) - 2, 3))


class GeneNotFound(Exception):
    """A genome in which a gene could not be placed; str() says why. A normal outcome for some
    genomes (reported, not fatal), so not a TinygradLMError."""


class GeneLocator:
    def __init__(self, reference, location, k=20, window=1000, tries=6):
        self.reference, self.location, self.k, self.window = reference, location, k, window
        self.frame = len(location) % 3 == 0                 # a coding sequence: keep the frame whole
        self.anchors = {}                 # (boundary, is_end) -> [(offset from it, k-mer)], in the order tried
        for start, end, _ in location.parts:
            self.anchors[start, False] = self._anchors(start, tries, is_end=False)
            self.anchors[end, True] = self._anchors(end, tries, is_end=True)

    def _anchors(self, boundary, tries, is_end):
        """Nearest first, and of two as near, the one inside the gene: [0, -k, k, -2k, ...] for a
        start, [-k, 0, -2k, k, ...] for an end (an insertion just outside the gene then moves no
        boundary)."""
        out, k, ref = [], self.k, self.reference
        offsets = [0] + [sign * step * k for step in range(1, tries + 1) for sign in (-1, 1)]
        if is_end:
            offsets = [-k - o for o in offsets]
        for offset in offsets:
            at = boundary + offset
            kmer = ref[max(at, 0):at + k]
            if len(kmer) < k or "N" in kmer:
                continue
            if ref.find(kmer) != at or ref.find(kmer, at + 1) >= 0:          # not unique (overlapping copies too)
                continue
            out.append((offset, kmer))
        return out

    def place(self, genome, boundary, is_end=False):
        """Where the reference position `boundary` (a part's start, or its end) lies in `genome`."""
        for offset, kmer in self.anchors[boundary, is_end]:
            expected = boundary + offset
            lo = max(0, expected - self.window)
            hit = genome.find(kmer, lo, expected + self.window + self.k)
            if hit >= 0 and genome.find(kmer, hit + 1, expected + self.window + self.k) < 0:
                return hit - offset
        which, position = ("end", boundary) if is_end else ("start", boundary + 1)     # 1-based, as GenBank's
        raise GeneNotFound(f"no anchor for the {which} at reference position {position:,} found "
                           f"(tried {len(self.anchors[boundary, is_end])} {self.k}-mers within {self.window} bases)")

    def locate(self, genome):
        """The gene's Location in `genome` (GeneNotFound says why it has none)."""
        parts = []
        for start, end, strand in self.location.parts:
            s, e = self.place(genome, start), self.place(genome, end, is_end=True)
            if not 0 <= s < e <= len(genome):
                raise GeneNotFound(f"the part {start + 1}..{end} maps to an empty or outside range {s + 1}..{e}")
            parts.append((s, e, strand))
        found = Location(parts)
        if self.frame and len(found) % 3:
            raise GeneNotFound(f"found with {len(found):,} bases (reference {len(self.location):,}), not a "
                               "multiple of 3: a frameshift or an assembly error")
        return found

    def extract(self, genome):
        return self.locate(genome).extract(genome)
