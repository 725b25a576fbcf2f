"""Write the bad-input corpus of this folder (run from anywhere; files are committed).

Every file is made up here; none is copied from elsewhere. Each one must raise its
typed error in ``tests/test_structures.py``.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent

HEADER = """data_{name}
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   {a:.4f}
_cell_length_b   {b:.4f}
_cell_length_c   {c:.4f}
_cell_angle_alpha   90.0
_cell_angle_beta   90.0
_cell_angle_gamma   90.0
_symmetry_Int_Tables_number   1
_chemical_formula_sum   '{formula}'
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
"""


def cif(name, abc, atoms, formula):
    """CIF text for (symbol, x, y, z, occupancy) atoms in an orthorhombic P1 cell."""
    a, b, c = abc
    lines = [HEADER.format(name=name, a=a, b=b, c=c, formula=formula)]
    for i, (sym, x, y, z, occ) in enumerate(atoms):
        lines.append(f"  {sym}  {sym}{i}  {x:.5f}  {y:.5f}  {z:.5f}  {occ}\n")
    return "".join(lines)


# A made-up "acetylene-like" molecular crystal: two C2H2 molecules in a 6 Å cube.
MOLECULES = [
    ("C", 0.10, 0.10, 0.10), ("C", 0.30, 0.10, 0.10), ("H", 0.00, 0.10, 0.10), ("H", 0.40, 0.10, 0.10),
    ("C", 0.60, 0.60, 0.60), ("C", 0.80, 0.60, 0.60), ("H", 0.50, 0.60, 0.60), ("H", 0.90, 0.60, 0.60),
]


def main():
    good = cif("good", (6.0, 6.0, 6.0), [(*m, 1) for m in MOLECULES], "C4 H4")
    (HERE / "empty.cif").write_text("")
    # Cut inside the atom loop, after the 5th atom line: the declared formula no longer matches.
    lines = good.splitlines(keepends=True)
    (HERE / "truncated.cif").write_text("".join(lines[: len(lines) - 3]))
    # Same crystal, one hydrogen half occupied.
    atoms = [(*m, 1) for m in MOLECULES]
    atoms[2] = (*MOLECULES[2], 0.5)
    (HERE / "partial_occupancy.cif").write_text(cif("partial", (6.0, 6.0, 6.0), atoms, "C4 H3.5"))
    # A C/N mixed site: two species sharing one position at half occupancy each.
    atoms = [(*m, 1) for m in MOLECULES]
    atoms[0] = ("C", *MOLECULES[0][1:], 0.5)
    atoms.insert(1, ("N", *MOLECULES[0][1:], 0.5))
    (HERE / "disordered.cif").write_text(cif("mixed", (6.0, 6.0, 6.0), atoms, "C3.5 N0.5 H4"))
    # 2000 carbon atoms on a 10 x 10 x 20 grid, 3 Å apart: valid but too big for MCRT.
    grid = [("C", (i + 0.5) / 10, (j + 0.5) / 10, (k + 0.5) / 20, 1)
            for i in range(10) for j in range(10) for k in range(20)]
    (HERE / "too_many_atoms.cif").write_text(cif("big", (30.0, 30.0, 60.0), grid, "C2000"))
    # Two atoms 0.1 Å apart.
    atoms = [(*m, 1) for m in MOLECULES] + [("H", 0.40 + 0.1 / 6.0, 0.10, 0.10, 1)]
    (HERE / "close_atoms.cif").write_text(cif("close", (6.0, 6.0, 6.0), atoms, "C4 H5"))
    # A methane molecule: plain XYZ, no lattice.
    (HERE / "molecule.xyz").write_text(
        "5\nmethane\nC 0.000 0.000 0.000\nH 0.629 0.629 0.629\nH -0.629 -0.629 0.629\n"
        "H -0.629 0.629 -0.629\nH 0.629 -0.629 -0.629\n"
    )
    # Latin-1 bytes that are not UTF-8 (a stray author name in a comment).
    (HERE / "non_utf8.cif").write_bytes(b"# author: M\xfcller \xff\xfe\n" + good.encode())
    # Text that is not a CIF at all.
    (HERE / "not_a_cif.cif").write_text("this is a lab notebook entry, not a crystal structure\n")
    # A good file, to show the reader accepts what it should.
    (HERE / "good.cif").write_text(good)


if __name__ == "__main__":
    main()
