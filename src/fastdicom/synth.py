"""Synthetic but realistic DICOM objects, for demos, tests and benchmarks.

``ct_slice`` builds a CT Image Storage data set with about 100 attributes,
nested sequences, a private block and 512x512 int16 pixels; the series
shares Study/Series UIDs and moves Image Position (Patient) along the slice
normal.
"""

from __future__ import annotations

import os
import uuid

import numpy as np

from .dataset.dataset import Dataset
from .dataset.write import write

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def new_uid() -> str:
    """A UID under the 2.25 root (UUID-derived, PS3.5 B.2)."""
    return "2.25." + str(uuid.uuid4().int)


def _item(pairs: list[tuple[str, str, object]]) -> Dataset:
    ds = Dataset()
    for key, vr, value in pairs:
        ds.add_new(key, vr, value)
    return ds


def ct_slice(
    index: int,
    *,
    study_uid: str,
    series_uid: str,
    frame_uid: str,
    rows: int = 512,
    columns: int = 512,
    thickness: float = 1.25,
    pixels: np.ndarray | None = None,
) -> Dataset:
    """One CT slice; ``index`` sets Instance Number and position."""
    z = -200.0 + index * thickness
    ds = Dataset()
    add = ds.add_new
    add("SpecificCharacterSet", "CS", "ISO_IR 100")
    add("ImageType", "CS", ["ORIGINAL", "PRIMARY", "AXIAL"])
    add("InstanceCreationDate", "DA", "20261123")
    add("InstanceCreationTime", "TM", "101010.000000")
    add("SOPClassUID", "UI", CT_IMAGE_STORAGE)
    sop_uid = new_uid()
    add("SOPInstanceUID", "UI", sop_uid)
    add("StudyDate", "DA", "20261123")
    add("SeriesDate", "DA", "20261123")
    add("AcquisitionDate", "DA", "20261123")
    add("ContentDate", "DA", "20261123")
    add("StudyTime", "TM", "100000")
    add("SeriesTime", "TM", "100500")
    add("AcquisitionTime", "TM", f"1006{index % 60:02d}.250000")
    add("ContentTime", "TM", f"1006{index % 60:02d}.250000")
    add("AccessionNumber", "SH", "ACC0001234")
    add("Modality", "CS", "CT")
    add("Manufacturer", "LO", "fastdicom synthetic")
    add("InstitutionName", "LO", "Hôpital Exemple")
    add("ReferringPhysicianName", "PN", "Müller^Anna^^Dr.")
    add("StationName", "SH", "CT01")
    add("StudyDescription", "LO", "CT CHEST ABDOMEN PELVIS")
    add("SeriesDescription", "LO", "AXIAL 1.25 STANDARD")
    add("ManufacturerModelName", "LO", "SYNTH-64")
    add(
        "ProcedureCodeSequence",
        "SQ",
        [
            _item(
                [
                    ("CodeValue", "SH", "CTCAP"),
                    ("CodingSchemeDesignator", "SH", "99LOCAL"),
                    ("CodeMeaning", "LO", "CT Chest Abdomen Pelvis"),
                ]
            )
        ],
    )
    add(
        "ReferencedStudySequence",
        "SQ",
        [
            _item(
                [
                    ("ReferencedSOPClassUID", "UI", "1.2.840.10008.3.1.2.3.1"),
                    ("ReferencedSOPInstanceUID", "UI", study_uid),
                ]
            )
        ],
    )
    add("PatientName", "PN", "Doe^Jane")
    add("PatientID", "LO", "PID000042")
    add("PatientBirthDate", "DA", "19700101")
    add("PatientSex", "CS", "F")
    add("PatientAge", "AS", "056Y")
    add("PatientWeight", "DS", 68.5)
    add("BodyPartExamined", "CS", "CHEST")
    add("ScanOptions", "CS", "HELICAL MODE")
    add("SliceThickness", "DS", thickness)
    add("KVP", "DS", 120)
    add("DataCollectionDiameter", "DS", 500)
    add("SoftwareVersions", "LO", "1.0")
    add("ReconstructionDiameter", "DS", 380)
    add("DistanceSourceToDetector", "DS", 1040.3)
    add("DistanceSourceToPatient", "DS", 570)
    add("GantryDetectorTilt", "DS", 0)
    add("TableHeight", "DS", 160)
    add("RotationDirection", "CS", "CW")
    add("ExposureTime", "IS", 500)
    add("XRayTubeCurrent", "IS", 300)
    add("Exposure", "IS", 150)
    add("FilterType", "SH", "BODY FILTER")
    add("GeneratorPower", "IS", 36)
    add("FocalSpots", "DS", 0.7)
    add("ConvolutionKernel", "SH", "STANDARD")
    add("PatientPosition", "CS", "HFS")
    add("RevolutionTime", "FD", 0.5)
    add("SingleCollimationWidth", "FD", 0.625)
    add("TotalCollimationWidth", "FD", 40.0)
    add("TableSpeed", "FD", 78.75)
    add("TableFeedPerRotation", "FD", 39.375)
    add("SpiralPitchFactor", "FD", 0.984375)
    add("CTDIvol", "FD", 8.12)
    add(
        "CTDIPhantomTypeCodeSequence",
        "SQ",
        [
            _item(
                [
                    ("CodeValue", "SH", "113691"),
                    ("CodingSchemeDesignator", "SH", "DCM"),
                    ("CodeMeaning", "LO", "IEC Body Dosimetry Phantom"),
                ]
            )
        ],
    )
    add("StudyInstanceUID", "UI", study_uid)
    add("SeriesInstanceUID", "UI", series_uid)
    add("StudyID", "SH", "1")
    add("SeriesNumber", "IS", 3)
    add("AcquisitionNumber", "IS", 1)
    add("InstanceNumber", "IS", index + 1)
    add("ImagePositionPatient", "DS", [-190.0, -190.0, z])
    add("ImageOrientationPatient", "DS", [1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    add("FrameOfReferenceUID", "UI", frame_uid)
    add("PositionReferenceIndicator", "LO", "SN")
    add("SliceLocation", "DS", z)
    add("SamplesPerPixel", "US", 1)
    add("PhotometricInterpretation", "CS", "MONOCHROME2")
    add("Rows", "US", rows)
    add("Columns", "US", columns)
    add("PixelSpacing", "DS", [0.742188, 0.742188])
    add("BitsAllocated", "US", 16)
    add("BitsStored", "US", 16)
    add("HighBit", "US", 15)
    add("PixelRepresentation", "US", 1)
    add("WindowCenter", "DS", [40, 400])
    add("WindowWidth", "DS", [400, 1500])
    add("RescaleIntercept", "DS", -1024)
    add("RescaleSlope", "DS", 1)
    add("RescaleType", "LO", "HU")
    add("WindowCenterWidthExplanation", "LO", ["WINDOW1", "WINDOW2"])
    add("LossyImageCompression", "CS", "00")
    add(
        "RequestAttributesSequence",
        "SQ",
        [
            _item(
                [
                    ("RequestedProcedureID", "SH", "RP1"),
                    ("ScheduledProcedureStepID", "SH", "SPS1"),
                    (
                        "ScheduledProtocolCodeSequence",
                        "SQ",
                        [
                            _item(
                                [
                                    ("CodeValue", "SH", "CT-CAP"),
                                    ("CodingSchemeDesignator", "SH", "99LOCAL"),
                                    ("CodeMeaning", "LO", "CT CAP with contrast"),
                                ]
                            )
                        ],
                    ),
                ]
            )
        ],
    )
    add("PerformedProcedureStepStartDate", "DA", "20261123")
    add("PerformedProcedureStepStartTime", "TM", "100000")
    add("PerformedProcedureStepID", "SH", "PPS1")
    add("PerformedProcedureStepDescription", "LO", "CT CAP")
    # A private block: creator at (0009,0010), elements (0009,10xx).
    add(0x00090010, "LO", "FASTDICOM SYNTH")
    add(0x00091001, "LO", "synthetic private text")
    add(0x00091002, "UL", index)
    add(0x00091003, "FD", [1.5, 2.5, 3.5])
    add(0x00091004, "OB", bytes(range(64)))
    if pixels is None:
        yy, xx = np.mgrid[0:rows, 0:columns]
        r = np.hypot(yy - rows / 2, xx - columns / 2)
        pixels = np.where(r < min(rows, columns) * 0.45, 40 + (index % 50), -1000).astype("<i2")
        pixels[rows // 3 : rows // 3 + 20, columns // 3 : columns // 3 + 20] = 300 + index
    add("PixelData", "OW", np.ascontiguousarray(pixels, dtype="<i2").tobytes())
    return ds


def write_ct_series(folder: str, slices: int = 300, *, rows: int = 512, columns: int = 512) -> list[str]:
    """Write a CT series of ``slices`` files into ``folder``; return the paths."""
    os.makedirs(folder, exist_ok=True)
    study, series, frame = new_uid(), new_uid(), new_uid()
    yy, xx = np.mgrid[0:rows, 0:columns]
    r = np.hypot(yy - rows / 2, xx - columns / 2)
    base = np.where(r < min(rows, columns) * 0.45, 40, -1000).astype("<i2")
    paths = []
    for i in range(slices):
        px = base.copy()
        px[rows // 3 : rows // 3 + 20, columns // 3 : columns // 3 + 20] = 300 + i
        ds = ct_slice(i, study_uid=study, series_uid=series, frame_uid=frame, rows=rows, columns=columns, pixels=px)
        path = os.path.join(folder, f"CT{i + 1:04d}.dcm")
        write(path, ds)
        paths.append(path)
    return paths


ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.1"


def enhanced_ct(
    frames: int = 50,
    *,
    rows: int = 128,
    columns: int = 128,
    thickness: float = 1.25,
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    order: list[int] | None = None,
    series_uid: str | None = None,
    pixels: np.ndarray | None = None,
) -> Dataset:
    """An Enhanced CT Image Storage object: ``frames`` frames with per-frame functional groups.

    Frame ``i`` of the stack lies ``i * thickness`` mm along the slice normal
    and holds ``pixels[i]`` (default: a phantom whose square is ``300 + i``);
    ``order`` stores the frames in another order (a permutation of the stack
    indices), as scanners sometimes do.
    """
    iop = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:])
    if pixels is None:
        yy, xx = np.mgrid[0:rows, 0:columns]
        base = np.where(np.hypot(yy - rows / 2, xx - columns / 2) < min(rows, columns) * 0.45, 40, -1000)
        pixels = np.repeat(base[None].astype("<i2"), frames, axis=0)
        for i in range(frames):
            pixels[i, rows // 3 : rows // 3 + 8, columns // 3 : columns // 3 + 8] = 300 + i
    order = list(range(frames)) if order is None else list(order)
    ds = Dataset()
    add = ds.add_new
    add("SpecificCharacterSet", "CS", "ISO_IR 100")
    add("ImageType", "CS", ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"])
    add("SOPClassUID", "UI", ENHANCED_CT_IMAGE_STORAGE)
    add("SOPInstanceUID", "UI", new_uid())
    add("StudyDate", "DA", "20261123")
    add("ContentDate", "DA", "20261123")
    add("StudyTime", "TM", "100000")
    add("ContentTime", "TM", "100700")
    add("AccessionNumber", "SH", "ACC0001234")
    add("Modality", "CS", "CT")
    add("Manufacturer", "LO", "fastdicom synthetic")
    add("PatientName", "PN", "Doe^Jane")
    add("PatientID", "LO", "PID000042")
    add("StudyInstanceUID", "UI", new_uid())
    add("SeriesInstanceUID", "UI", series_uid or new_uid())
    add("SeriesNumber", "IS", 4)
    add("InstanceNumber", "IS", 1)
    add("FrameOfReferenceUID", "UI", new_uid())
    add("PositionReferenceIndicator", "LO", "SN")
    add("ContentQualification", "CS", "PRODUCT")
    add("NumberOfFrames", "IS", frames)
    shared = _item(
        [
            (
                "PixelMeasuresSequence",
                "SQ",
                [_item([("PixelSpacing", "DS", [0.5, 0.5]), ("SliceThickness", "DS", thickness)])],
            ),
            ("PlaneOrientationSequence", "SQ", [_item([("ImageOrientationPatient", "DS", [float(v) for v in iop])])]),
            (
                "PixelValueTransformationSequence",
                "SQ",
                [_item([("RescaleIntercept", "DS", -1024), ("RescaleSlope", "DS", 1), ("RescaleType", "LO", "HU")])],
            ),
        ]
    )
    add("SharedFunctionalGroupsSequence", "SQ", [shared])
    per_frame = []
    for stored, i in enumerate(order):
        pos = np.array([-32.0, -32.0, -100.0]) + normal * (i * thickness)
        per_frame.append(
            _item(
                [
                    (
                        "FrameContentSequence",
                        "SQ",
                        [_item([("InStackPositionNumber", "UL", i + 1), ("FrameAcquisitionNumber", "US", stored + 1)])],
                    ),
                    (
                        "PlanePositionSequence",
                        "SQ",
                        [_item([("ImagePositionPatient", "DS", [round(float(v), 6) for v in pos])])],
                    ),
                ]
            )
        )
    add("PerFrameFunctionalGroupsSequence", "SQ", per_frame)
    add("SamplesPerPixel", "US", 1)
    add("PhotometricInterpretation", "CS", "MONOCHROME2")
    add("Rows", "US", rows)
    add("Columns", "US", columns)
    add("BitsAllocated", "US", 16)
    add("BitsStored", "US", 16)
    add("HighBit", "US", 15)
    add("PixelRepresentation", "US", 1)
    add("LossyImageCompression", "CS", "00")
    stored_pixels = np.ascontiguousarray(np.asarray(pixels, dtype="<i2")[order])
    add("PixelData", "OW", stored_pixels.tobytes())
    return ds
