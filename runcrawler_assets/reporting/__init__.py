"""What people look at, drawn from the stored analytics: charts and the HTML report.

`plans` says which charts each analysis shows and from what (each a
`chart_plan.ChartPlan`, light enough for the chart worker), `figures` draws
each of them (one function per chart), `charts` draws shapes (pies, bars,
box plots...), `drawing` shares the drawing with a worker process, `report`
renders the page, and `assemble` is the one path from the warehouse to a
page that the `report` asset and `runcrawler report` share. `privacy` hides
user names.
"""
