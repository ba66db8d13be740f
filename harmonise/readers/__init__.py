"""Reading SPSS and Stata files with pyreadstat: metadata, typed missing, chunks."""

from harmonise.readers.files import SourceFile, detect_format, open_source

__all__ = ["SourceFile", "detect_format", "open_source"]
