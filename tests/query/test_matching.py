"""The C-FIND matching rules of PS3.4 C.2.2.2, one test per rule, each citing its clause."""

from __future__ import annotations

import pytest

import fastdicom
from fastdicom import Dataset
from fastdicom.query import Kind, MatchOptions, QueryError, compile_query


def ds(**values) -> Dataset:
    d = Dataset()
    for k, v in values.items():
        setattr(d, k, v)
    return d


def q(options: MatchOptions | None = None, **keys):
    return compile_query(ds(**keys), options)


STUDY = ds(
    PatientName="Yamada^Tarou=山田^太郎=やまだ^たろう",
    PatientID="PID-001",
    StudyDate="20240115",
    StudyTime="093000",
    StudyInstanceUID="1.2.3.4",
    ModalitiesInStudy=["CT", "MR"],
    AccessionNumber="",
    StudyDescription="CHEST CT",
    NumberOfStudyRelatedInstances="42",
)


def test_universal_matching_c_2_2_2_3():
    """A zero-length key matches every entity and asks for the attribute."""
    query = q(PatientName="", AccessionNumber="", StudyDate="")
    assert all(k.kind is Kind.UNIVERSAL for k in query.keys)
    assert query.matches(STUDY) and query.matches(ds(PatientID="x"))
    answer = query.answer(STUDY)
    assert answer.PatientName == STUDY.PatientName and answer.AccessionNumber == ""
    assert "StudyDate" in answer


def test_single_value_matching_c_2_2_2_1():
    assert q(PatientID="PID-001").matches(STUDY)
    assert not q(PatientID="PID-00").matches(STUDY)
    assert not q(PatientID="pid-001").matches(STUDY)  # case-sensitive but for PN
    assert q(StudyDescription="CHEST CT ").matches(STUDY)  # trailing space not significant
    assert q(StudyDate="20240115").matches(STUDY) and not q(StudyDate="20240116").matches(STUDY)
    assert q(NumberOfStudyRelatedInstances="42").matches(STUDY)
    assert q(NumberOfStudyRelatedInstances="+42").matches(STUDY)  # IS compared as numbers


def test_person_names_ignore_case_by_default_and_literal_on_request_c_2_2_2_1():
    """PS3.4 lets PN matching be insensitive to case; ours is by default (as Orthanc), literal when configured."""
    assert q(PatientName="YAMADA^TAROU=山田^太郎=やまだ^たろう").matches(STUDY)
    literal = MatchOptions(pn_case_insensitive=False)
    assert not q(literal, PatientName="YAMADA^TAROU=山田^太郎=やまだ^たろう").matches(STUDY)
    assert q(literal, PatientName="Yamada^Tarou=山田^太郎=やまだ^たろう").matches(STUDY)
    # trailing empty components and groups are not significant
    assert q(PatientName="Doe^John").matches(ds(PatientName="Doe^John^^"))
    assert q(PatientName="Doe^John^^=").matches(ds(PatientName="Doe^John"))


def test_list_of_uid_matching_c_2_2_2_2():
    query = q(StudyInstanceUID=["1.2.3.5", "1.2.3.4"])
    assert query.keys[0].kind is Kind.UID_LIST
    assert query.matches(STUDY) and not q(StudyInstanceUID=["1.2.3.5", "1.2.3.6"]).matches(STUDY)


def test_wild_card_matching_c_2_2_2_4():
    assert q(PatientID="PID*").matches(STUDY)
    assert q(PatientID="PID-00?").matches(STUDY)
    assert not q(PatientID="PID-0?").matches(STUDY)
    assert q(PatientName="yam*").matches(STUDY)  # PN wild cards follow the PN case policy
    assert q(StudyDescription="*CT").matches(STUDY) and not q(StudyDescription="*MR").matches(STUDY)
    assert q(PatientID="*").keys[0].kind is Kind.UNIVERSAL  # "*" alone is universal matching
    assert q(PatientID="*").matches(ds(PatientID=""))
    assert q(StudyDescription="C*T").matches(STUDY)
    assert q(PatientID="P(D*").matches(ds(PatientID="P(D1"))  # the rest is literal, not a pattern


def test_range_matching_dates_c_2_2_2_5_1():
    assert q(StudyDate="20240101-20240131").matches(STUDY)
    assert q(StudyDate="20240115-20240115").matches(STUDY)  # inclusive
    assert q(StudyDate="-20240115").matches(STUDY) and not q(StudyDate="-20240114").matches(STUDY)
    assert q(StudyDate="20240115-").matches(STUDY) and not q(StudyDate="20240116-").matches(STUDY)


def test_range_matching_times_c_2_2_2_5_2():
    assert q(StudyTime="0900-1000").matches(STUDY)
    assert q(StudyTime="-09").matches(STUDY)  # a bound stands for its precision: -09 includes 09:59:59
    assert not q(StudyTime="-0929").matches(STUDY)
    assert q(StudyTime="093000-").matches(STUDY) and not q(StudyTime="093000.000001-").matches(STUDY)


def test_range_matching_datetime_with_offsets_c_2_2_2_5():
    stored = ds(AcquisitionDateTime="20240115093000.5-0500")
    assert q(AcquisitionDateTime="20240115-20240116").matches(stored)
    assert q(AcquisitionDateTime="2024-").matches(stored)
    assert not q(AcquisitionDateTime="-20240114").matches(stored)
    assert q(AcquisitionDateTime="20240115093000-0500-20240115093001-0500").matches(stored)


def test_combined_date_time_range_matching_when_negotiated_c_2_2_2_5_3():
    stored = ds(StudyDate="20240115", StudyTime="093000")
    keys = {"StudyDate": "20240114-20240115", "StudyTime": "2300-0800"}
    # separately: 09:30 is not within 23:00-08:00
    assert not q(**keys).matches(stored)
    # combined: from 2024-01-14 23:00 to 2024-01-15 08:00, still not 09:30 ...
    assert not q(MatchOptions(combined_datetime=True), **keys).matches(stored)
    # ... but 2024-01-14 09:00 to 2024-01-15 10:00 holds it, though 09:30 < 09:00 fails separately: no
    wide = {"StudyDate": "20240114-20240115", "StudyTime": "1000-1000"}
    assert not q(**wide).matches(stored)
    assert q(MatchOptions(combined_datetime=True), **wide).matches(stored)


def test_multiple_value_matching_c_2_2_2_7():
    assert q(PatientID=["X", "PID-001"]).matches(STUDY)
    assert q(PatientID=["X", "PID*"]).matches(STUDY)
    assert not q(PatientID=["X", "Y"]).matches(STUDY)
    assert q(StudyDate=["20230101", "20240101-20240131"]).matches(STUDY)


def test_multi_valued_stored_attributes_match_on_any_value():
    assert q(ModalitiesInStudy="MR").matches(STUDY)
    assert q(ModalitiesInStudy=["US", "CT"]).matches(STUDY)
    assert not q(ModalitiesInStudy="US").matches(STUDY)


def test_empty_value_matching():
    """A key of "" (two quotation marks) matches an attribute that is absent or has no value."""
    assert q(AccessionNumber='""').keys[0].kind is Kind.EMPTY
    assert q(AccessionNumber='""').matches(STUDY)
    assert q(ReferringPhysicianName='""').matches(STUDY)  # absent
    assert not q(PatientID='""').matches(STUDY)


def test_sequence_matching_c_2_2_2_6():
    item = ds(CodeValue="12345", CodingSchemeDesignator="DCM")
    other = ds(CodeValue="99999", CodingSchemeDesignator="SRT")
    stored = ds(ProcedureCodeSequence=[other, item])
    key_item = ds(CodeValue="12345", CodingSchemeDesignator="")
    query = q(ProcedureCodeSequence=[key_item])
    assert query.keys[0].kind is Kind.SEQUENCE and query.matches(stored)
    answer = query.answer(stored)
    assert [i.CodeValue for i in answer.ProcedureCodeSequence] == ["12345"]  # the matching items only
    assert not q(ProcedureCodeSequence=[ds(CodeValue="0")]).matches(stored)
    universal = q(ProcedureCodeSequence=[Dataset()])
    assert universal.keys[0].kind is Kind.UNIVERSAL and universal.matches(ds(PatientID="x"))
    assert len(universal.answer(stored).ProcedureCodeSequence) == 2
    with pytest.raises(QueryError):
        q(ProcedureCodeSequence=[item, other])


def test_fuzzy_person_names_only_when_negotiated():
    stored = ds(PatientName="Müller^Jürgen")
    assert not q(PatientName="Muller^Jurgen").matches(stored)
    fuzzy = MatchOptions(fuzzy_pn=True)
    assert q(fuzzy, PatientName="muller^jurgen").matches(stored)
    assert q(fuzzy, PatientName="山田^太郎").matches(STUDY)  # a component group on its own


def test_specific_character_set_and_level_are_never_matched_c_2_2_2():
    query = q(SpecificCharacterSet="ISO_IR 100", QueryRetrieveLevel="STUDY", PatientID="PID-001")
    assert [k.tag for k in query.keys] == [0x00100020]


def test_queries_in_other_character_sets_match_unicode_values():
    """An identifier encoded in ISO 2022 IR 87 (JIS X 0208) matches the name stored in UTF-8."""
    ident = ds(SpecificCharacterSet=["", "ISO 2022 IR 87"], PatientName="Yamada^Tarou=山田^太郎=やまだ^たろう")
    wire = fastdicom.read(fastdicom.to_bytes(ident))
    assert "\x1b$B" in bytes(wire["PatientName"].raw).decode("latin-1")  # really ISO 2022 on the wire
    stored = fastdicom.read(fastdicom.to_bytes(ds(SpecificCharacterSet="ISO_IR 192", PatientName=STUDY.PatientName)))
    assert compile_query(wire).matches(stored)


@pytest.mark.parametrize(
    "keys",
    [
        {"StudyDate": "2024-01-01"},
        {"StudyDate": "-"},
        {"StudyTime": "25"},
        {"StudyDate": "2024011"},
        {"NumberOfStudyRelatedInstances": "many"},
    ],
)
def test_malformed_keys_raise_query_error(keys):
    with pytest.raises(QueryError):
        q(**keys)


def test_binary_keys_cannot_be_matched():
    ident = Dataset()
    ident.add_new(0x7FE00010, "OW", b"\x00\x01")
    with pytest.raises(QueryError, match="cannot be matched"):
        compile_query(ident)
    ident.add_new(0x7FE00010, "OW", b"")
    assert compile_query(ident).keys[0].kind is Kind.UNIVERSAL


def test_a_long_uid_list_is_compiled_once():
    uids = [f"1.2.3.{i}" for i in range(100_000)]
    query = q(SOPInstanceUID=uids)
    assert query.keys[0].kind is Kind.UID_LIST
    assert query.matches(ds(SOPInstanceUID="1.2.3.99999")) and not query.matches(ds(SOPInstanceUID="1.2.4"))
