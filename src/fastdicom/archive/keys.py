"""The keys of the Query/Retrieve information models (PS3.4 C.6.1.1, C.6.2.1) and where the index keeps them.

Each :class:`IndexKey` names an attribute, the table of the index that holds
it (``patient``, ``study``, ``series``, ``instance``), its matching type in the
Patient Root and Study Root models (``U`` unique, ``R`` required, ``O``
optional; the standard's Tables C.6-1 to C.6-8), and how its value is held:

- ``column``: a column of its table, written from the object's header;
- ``computed``: derived from the rows below (Number of ... Related ...,
  Modalities in Study, SOP Classes in Study);
- ``header``: sequences, answered and matched from a stored file's header.

Attributes not listed (the standard's "all other attributes at this level")
are matched and answered from the header of one stored file of the entity.
The table also lists common return keys beyond the standard's lists (Series
Description, Body Part Examined, Available Transfer Syntax UID...).
"""

from __future__ import annotations

from typing import NamedTuple

from ..dictionary import entry, tag_of

#: The tables from the top, and the level each stands for in each model.
TABLES = ("patient", "study", "series", "instance")
LEVELS = {
    "patient": ("PATIENT", "STUDY", "SERIES", "IMAGE"),
    "study": ("STUDY", "STUDY", "SERIES", "IMAGE"),  # Study Root: patient attributes are study-level keys
}


class IndexKey(NamedTuple):
    """One key attribute: tag, keyword, VR, multiplicity, table, how it is held, its types (Patient, Study Root)."""

    tag: int
    keyword: str
    vr: str
    vm: str
    table: str
    held: str  # "column" | "computed" | "header"
    patient_root: str  # "U" | "R" | "O" | "" (not a key of the model)
    study_root: str


# keyword, table, Patient Root type, Study Root type (PS3.4 Tables C.6-1..C.6-8; "-" not a key of the model, "+" a
# common return key beyond the tables, optional in both)
_FACTS = """
PatientName patient R R
PatientID patient U R
IssuerOfPatientID patient O O
IssuerOfPatientIDQualifiersSequence patient O O
ReferencedPatientSequence patient O O
PatientBirthDate patient O O
PatientBirthTime patient O O
PatientSex patient O O
OtherPatientIDsSequence patient O O
OtherPatientNames patient O O
EthnicGroup patient O O
PatientComments patient O O
NumberOfPatientRelatedStudies patient O O
NumberOfPatientRelatedSeries patient O O
NumberOfPatientRelatedInstances patient O O
StudyDate study R R
StudyTime study R R
AccessionNumber study R R
StudyID study R R
StudyInstanceUID study U U
ReferringPhysicianName study O O
StudyDescription study O O
ProcedureCodeSequence study O O
NameOfPhysiciansReadingStudy study O O
AdmittingDiagnosesDescription study O O
ReferencedStudySequence study O O
PatientAge study O O
PatientSize study O O
PatientWeight study O O
Occupation study O O
AdditionalPatientHistory study O O
OtherStudyNumbers study O O
NumberOfStudyRelatedSeries study O O
NumberOfStudyRelatedInstances study O O
ModalitiesInStudy study O O
SOPClassesInStudy study O O
IssuerOfAccessionNumberSequence study O O
Modality series R R
SeriesNumber series R R
SeriesInstanceUID series U U
NumberOfSeriesRelatedInstances series O O
SeriesDescription series + +
BodyPartExamined series + +
SeriesDate series + +
SeriesTime series + +
PerformedProcedureStepStartDate series O O
PerformedProcedureStepStartTime series O O
RequestAttributesSequence series O O
Laterality series + +
ProtocolName series + +
StationName series + +
InstitutionName series + +
Manufacturer series + +
InstanceNumber instance R R
SOPInstanceUID instance U U
SOPClassUID instance O O
AlternateRepresentationSequence instance O O
RelatedGeneralSOPClassUID instance O O
ConceptNameCodeSequence instance O O
ContentTemplateSequence instance O O
ContainerIdentifier instance O O
SpecimenDescriptionSequence instance O O
ContentDate instance + +
ContentTime instance + +
AcquisitionNumber instance + +
Rows instance + +
Columns instance + +
NumberOfFrames instance + +
AvailableTransferSyntaxUID instance + +
"""

COMPUTED = frozenset(
    (
        "NumberOfPatientRelatedStudies",
        "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "ModalitiesInStudy",
        "SOPClassesInStudy",
        "NumberOfSeriesRelatedInstances",
        "AvailableTransferSyntaxUID",  # the instance's transfer syntax column
    )
)


def _build() -> dict[int, IndexKey]:
    keys: dict[int, IndexKey] = {}
    for line in _FACTS.strip().splitlines():
        keyword, table, pr, sr = line.split()
        tag = tag_of(keyword)
        e = entry(tag) if tag is not None else None
        if tag is None or e is None:
            raise RuntimeError(f"{keyword} is not in the dictionary")
        vr, vm = e[0], e[1]
        held = "computed" if keyword in COMPUTED else "header" if vr == "SQ" else "column"
        types = ["O" if t == "+" else "" if t == "-" else t for t in (pr, sr)]
        keys[tag] = IndexKey(tag, keyword, vr, vm, table, held, types[0], types[1])
    return keys


#: Every key the index knows, by tag.
KEYS: dict[int, IndexKey] = _build()
#: The columns of each table (keys held as columns), in order.
COLUMNS: dict[str, tuple[IndexKey, ...]] = {
    t: tuple(k for k in KEYS.values() if k.table == t and k.held == "column") for t in TABLES
}
#: The unique key of each table.
UNIQUE = {"patient": 0x00100020, "study": 0x0020000D, "series": 0x0020000E, "instance": 0x00080018}
#: Columns the index has an SQL index on (the keys people query).
INDEXED = frozenset(
    (
        "PatientID",
        "PatientName",
        "StudyDate",
        "AccessionNumber",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "Modality",
        "PatientBirthDate",
    )
)
