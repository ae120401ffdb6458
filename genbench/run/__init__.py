"""Running a grid: expand it into cells (grid), run each cell (cell, train, timing, health,
guard, contract) on the loaded data (data), and drive them all (runner)."""
