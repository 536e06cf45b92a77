"""What people look at: charts drawn from tables, and the HTML report."""
