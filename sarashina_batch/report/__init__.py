"""The corpus and run report (`sarashina-batch report`, `plan --report`, `output.report`): one
section per question, its numbers and Plotly figures, written as one self-contained HTML page
and as JSON."""
