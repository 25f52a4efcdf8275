package report

// Plot is one written image.
type Plot struct {
	Title string
	// File is the image's name relative to the report.
	File string
}
