"""Research data out and in: file writers, codebook, the export package, imports."""
