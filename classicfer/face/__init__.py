"""classicfer.face"""
