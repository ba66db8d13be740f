# The many-files case read through retroharmonize (CRAN), for comparison with `harmonise build`.
#
# Rscript benchmarks/retroharmonize.R SPEC.tsv
#
# SPEC.tsv has one line per file: its path, a tab, and the variables harmonise reads from it (comma
# separated; benchmarks/run.py writes it). Each file is read with retroharmonize::read_spss (labelled
# values and user-missing codes kept, as harmonise keeps them), its needed variables kept, and the
# variables' value labels collected with retroharmonize::metadata_create, the first steps of a
# retroharmonize workflow. Prints the seconds spent; run.py times the whole process.
suppressPackageStartupMessages(library(retroharmonize))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 1) stop("usage: Rscript retroharmonize.R SPEC.tsv")
spec <- read.delim(args[1], header = FALSE, sep = "\t", quote = "", stringsAsFactors = FALSE,
                   col.names = c("file", "columns"))
started <- Sys.time()
rows <- 0
for (i in seq_len(nrow(spec))) {
  wanted <- strsplit(spec$columns[i], ",", fixed = TRUE)[[1]]
  survey <- read_spss(spec$file[i], id = basename(spec$file[i]))
  kept <- survey[, intersect(c("rowid", wanted), names(survey))]
  invisible(metadata_create(kept))
  rows <- rows + nrow(kept)
}
cat(sprintf("%d files, %d rows in %.2f s\n", nrow(spec), rows,
            as.numeric(difftime(Sys.time(), started, units = "secs"))))
