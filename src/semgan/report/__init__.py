"""The comparison report of a compare folder (``semgan report``); see :mod:`semgan.report.build`."""

from __future__ import annotations

from semgan.report.build import REPORT_HTML, REPORT_MD, build_document, build_report

__all__ = ["REPORT_HTML", "REPORT_MD", "build_document", "build_report"]
