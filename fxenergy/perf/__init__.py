"""Duration and power models per op family and device kind (fitted coefficients as JSON)."""
