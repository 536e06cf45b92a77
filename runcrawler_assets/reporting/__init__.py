"""What people look at, drawn from the stored analytics: charts and the HTML report.

`charts` draws shapes (pies, bars, box plots...), `figures` the analyses'
charts from their tables (one function per chart), `report` renders the
page, and `assemble` is the one path from the warehouse to a page that the
`report` asset and `runcrawler report` share. `privacy` hides user names.
"""
