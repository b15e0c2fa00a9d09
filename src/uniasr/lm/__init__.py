"""Language models: back-off n-grams (ARPA) for kana-kanji conversion and search fusion."""
