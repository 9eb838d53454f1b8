"""classicfer.evaluation"""
