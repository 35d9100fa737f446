"""Pictures: training curves and confusion matrices (matplotlib, from the 'viz' extra)."""
