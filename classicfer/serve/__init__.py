"""classicfer.serve"""
