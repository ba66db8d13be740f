"""Outputs read from the declarations and the built database: codebooks, indicators, charts, exports."""
