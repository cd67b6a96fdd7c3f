"""Operations: health, readiness, metrics, the API description."""
