"""The fruit grading line: segment, measure, grade and count every kiwifruit on the conveyor (OpenCV only)."""
