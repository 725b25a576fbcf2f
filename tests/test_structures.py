"""Reading and validation: every bad input gets its typed error, good ones read as pymatgen does."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.io.vasp import Poscar

from mcrt_sklearn import errors
from mcrt_sklearn.structures import read_structure, read_structures, validate_structure

BAD_DIR = Path(__file__).resolve().parent / "data" / "bad"

BAD_FILES = {
    "empty.cif": errors.UnreadableStructureError,
    "truncated.cif": errors.UnreadableStructureError,
    "partial_occupancy.cif": errors.DisorderedStructureError,
    "disordered.cif": errors.DisorderedStructureError,
    "too_many_atoms.cif": errors.TooManyAtomsError,
    "close_atoms.cif": errors.OverlappingAtomsError,
    "molecule.xyz": errors.NotPeriodicError,
    "non_utf8.cif": errors.UnreadableStructureError,
    "not_a_cif.cif": errors.UnreadableStructureError,
}


@pytest.mark.parametrize("name,error", sorted(BAD_FILES.items()))
def test_bad_file_raises_typed_error_naming_it(name, error):
    path = BAD_DIR / name
    with pytest.raises(error) as info:
        read_structure(path, max_atoms=1023)
    assert info.value.structure_id == path.stem
    assert path.stem in str(info.value)
    assert isinstance(info.value, errors.StructureError)
    assert isinstance(info.value, ValueError)  # sklearn-style callers catch ValueError


def test_every_bad_file_is_covered():
    on_disk = {p.name for p in BAD_DIR.iterdir() if p.suffix in (".cif", ".xyz")} - {"good.cif"}
    assert on_disk == set(BAD_FILES)


def test_error_messages_say_why():
    with pytest.raises(errors.TooManyAtomsError, match="2000 atoms"):
        read_structure(BAD_DIR / "too_many_atoms.cif", max_atoms=1023)
    with pytest.raises(errors.OverlappingAtomsError, match=r"0\.100 Å"):
        read_structure(BAD_DIR / "close_atoms.cif")
    with pytest.raises(errors.UnreadableStructureError, match="truncated"):
        read_structure(BAD_DIR / "truncated.cif")
    with pytest.raises(errors.DisorderedStructureError, match="partial occupancy"):
        read_structure(BAD_DIR / "partial_occupancy.cif")


def test_big_cell_accepted_without_limit():
    sid, structure = read_structure(BAD_DIR / "too_many_atoms.cif")
    assert len(structure) == 2000


def test_good_file_reads(tmp_path):
    sid, structure = read_structure(BAD_DIR / "good.cif")
    assert sid == "good" and len(structure) == 8
    assert structure.composition.reduced_composition == Composition("CH")


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(errors.UnreadableStructureError, match="does not exist"):
        read_structure(tmp_path / "nope.cif")
    other = tmp_path / "thing.pdf"
    other.write_text("%PDF")
    with pytest.raises(errors.UnreadableStructureError, match="unknown file type"):
        read_structure(other)


def test_errors_pickle():
    err = errors.TooManyAtomsError("abc", "2000 atoms")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is errors.TooManyAtomsError and str(back) == str(err)


def test_validate_structure_in_memory():
    empty = Structure(Lattice.cubic(5), [], [])
    with pytest.raises(errors.EmptyStructureError):
        validate_structure(empty, "e")
    with pytest.raises(errors.NotPeriodicError):
        validate_structure("not a structure", "x")
    s = Structure(Lattice.cubic(5), ["C", "C"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(errors.OverlappingAtomsError):
        validate_structure(s, "s")
    assert validate_structure(s, "s", min_distance=0.0) is s


def test_cif_matches_pymatgen_atom_order(shared_data):
    path = shared_data / "mcrt_examples" / "cifs" / "5A_CSP_1.cif"
    _, ours = read_structure(path, max_atoms=1023)
    theirs = Structure.from_file(path, occupancy_tolerance=100)
    assert [s.specie.Z for s in ours] == [s.specie.Z for s in theirs]
    np.testing.assert_allclose(ours.cart_coords, theirs.cart_coords)


def test_occupancy_over_one_is_rescaled_like_the_reference(shared_data):
    # BENZEN.cif stores occupancies > 1; the reference's occupancy_tolerance=100 rescales them.
    _, structure = read_structure(shared_data / "mcrt_examples" / "cifs" / "BENZEN.cif")
    assert structure.is_ordered and len(structure) == 48


def test_poscar_and_extxyz_read_the_same_crystal(shared_data, tmp_path):
    _, ref = read_structure(shared_data / "x23" / "cifs" / "x23_02acetic_acid.cif")
    Poscar(ref).write_file(tmp_path / "POSCAR")
    _, from_poscar = read_structure(tmp_path / "POSCAR")
    lat = " ".join(f"{v:.10f}" for v in ref.lattice.matrix.ravel())
    rows = "\n".join(f"{s.specie} {x:.10f} {y:.10f} {z:.10f}" for s, (x, y, z) in zip(ref, ref.cart_coords))
    (tmp_path / "acetic.xyz").write_text(
        f"{len(ref)}\nLattice=\"{lat}\" Properties=species:S:1:pos:R:3 pbc=\"T T T\"\n{rows}\n"
    )
    sid, from_xyz = read_structure(tmp_path / "acetic.xyz")
    assert sid == "acetic"
    for other in (from_poscar, from_xyz):
        assert [s.specie.Z for s in other] == [s.specie.Z for s in ref]
        np.testing.assert_allclose(other.cart_coords, ref.cart_coords, atol=1e-6)


def test_read_structures_ids_and_mixed_input(shared_data):
    cifs = sorted((shared_data / "mcrt_examples" / "cifs").glob("5A_CSP_*.cif"))[:2]
    _, s0 = read_structure(cifs[0])
    out = read_structures([cifs[1], s0])
    assert [sid for sid, _ in out] == ["5A_CSP_2", "structure_1"]
    out = read_structures([cifs[1], s0], ids=["a", "b"])
    assert [sid for sid, _ in out] == ["a", "b"]
    with pytest.raises(ValueError, match="2 structures"):
        read_structures([cifs[1], s0], ids=["a"])
    assert read_structures(cifs[0])[0][0] == "5A_CSP_1"


def _cif_block(name: str, a: float, occupancy: str = "1") -> str:
    """A small P1 CIF data block (C2H2 per half cell) with cell length ``a`` (Å)."""
    sites = [("C", 0.1, 0.1, 0.1), ("C", 0.3, 0.1, 0.1), ("H", 0.0, 0.1, 0.1),
             ("H", 0.4, 0.1, 0.1), ("C", 0.6, 0.6, 0.6), ("C", 0.8, 0.6, 0.6),
             ("H", 0.5, 0.6, 0.6), ("H", 0.9, 0.6, 0.6)]
    rows = "\n".join(f"  {el} {el}{k} {x:.5f} {y:.5f} {z:.5f} {occupancy if k == 0 else '1'}"
                     for k, (el, x, y, z) in enumerate(sites))
    return (
        f"data_{name}\n_symmetry_space_group_name_H-M 'P 1'\n"
        f"_cell_length_a {a}\n_cell_length_b 6.0\n_cell_length_c 6.0\n"
        "_cell_angle_alpha 90.0\n_cell_angle_beta 90.0\n_cell_angle_gamma 90.0\n"
        "loop_\n _symmetry_equiv_pos_as_xyz\n  'x, y, z'\n"
        "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n"
        f" _atom_site_fract_y\n _atom_site_fract_z\n _atom_site_occupancy\n{rows}\n"
    )


def test_read_structures_reads_every_data_block(tmp_path):
    path = tmp_path / "two.cif"
    path.write_text("# two crystals\n" + _cif_block("first", 6.0) + _cif_block("second", 7.5))
    out = read_structures(path)
    assert [sid for sid, _ in out] == ["two#first", "two#second"]
    assert [s.lattice.a for _, s in out] == pytest.approx([6.0, 7.5])
    assert all(len(s) == 8 and s.composition.reduced_composition == Composition("CH")
               for _, s in out)
    _, good = read_structure(BAD_DIR / "good.cif")
    np.testing.assert_allclose(out[0][1].frac_coords, good.frac_coords)
    # given ids name the file; the block follows; other inputs keep their place
    out = read_structures([BAD_DIR / "good.cif", path], ids=["g", "x"])
    assert [sid for sid, _ in out] == ["g", "x#first", "x#second"]


def test_read_structure_refuses_several_data_blocks(tmp_path):
    path = tmp_path / "two.cif"
    path.write_text(_cif_block("first", 6.0) + _cif_block("second", 7.5))
    with pytest.raises(errors.MultipleStructuresError) as info:
        read_structure(path)
    err = info.value
    assert err.structure_id == "two" and isinstance(err, errors.StructureError)
    assert str(path) in str(err) and "2 data blocks" in str(err)
    assert "'first', 'second'" in str(err) and "read_structures" in str(err)


def test_blocks_without_atoms_and_text_fields_are_not_structures(tmp_path):
    meta = "data_global\n_publ_section_title\n;\nCrystals\ndata_not_a_block\n;\n"
    path = tmp_path / "one.cif"
    path.write_text(meta + _cif_block("only", 6.0))
    sid, structure = read_structure(path)
    assert sid == "one" and len(structure) == 8
    assert [sid for sid, _ in read_structures(path)] == ["one"]


def test_data_blocks_with_repeated_names_are_numbered(tmp_path):
    path = tmp_path / "same.cif"
    path.write_text(_cif_block("x", 6.0) + _cif_block("x", 6.5) + _cif_block("x", 7.0))
    assert [sid for sid, _ in read_structures(path)] == ["same#1", "same#2", "same#3"]


def test_a_bad_data_block_is_named_in_the_error(tmp_path):
    path = tmp_path / "mixed.cif"
    path.write_text(_cif_block("fine", 6.0) + _cif_block("partial", 6.0, occupancy="0.5"))
    with pytest.raises(errors.DisorderedStructureError) as info:
        read_structures(path)
    assert info.value.structure_id == "mixed#partial"
